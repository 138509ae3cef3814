# Figures (python -m repro.figures): a Fig. 10-like grid of the same crop for every Table 3 row, and PSNR against
# parameters and against inference time, one point per row. Both go into `snakemake --report report.html`.
import re

FIGURES = config["figures"]


def figure_dataset():
    """The configured figure set, or the first Table 3 set that is here when it is not."""
    here = present_sets(config["table3"]["datasets"], quiet=True)
    return FIGURES["dataset"] if FIGURES["dataset"] in here else here[0]


def trained_rows():
    return [m for m in config["table3"]["models"] if m not in UNTRAINED]


def row_label(model):
    """The paper's row label without its citation mark: "SwinIR[21]" -> "SwinIR"."""
    from repro import get_descriptor

    return re.sub(r"\[\d+\]$", "", get_descriptor(model).paper) or model


rule figure_grid:
    input:
        prepared=lambda wildcards: f"results/prepared/{figure_dataset()}_x{config['table3']['scale']}",
        checkpoints=expand("results/train/{model}/x{scale}/seed{seed}/final.pt", model=trained_rows(),
                           scale=config["table3"]["scale"], seed=seeds()[0]),
    output:
        report("tables/figures/fig10_grid.png", category="Figures", caption="../../docs/figures/grid.rst"),
    log:
        "logs/figures/grid.log",
    threads: job_settings("evaluate")["threads"]
    resources:
        mem_mb=job_settings("evaluate")["mem_mb"],
        runtime=job_settings("evaluate")["runtime"],
    params:
        images=" ".join(FIGURES["images"]),
        crop=FIGURES["crop"],
        models=lambda wildcards, input: " ".join(
            f"--model {shlex.quote(row_label(m))} {ckpt}" for m, ckpt in zip(trained_rows(), input.checkpoints)),
        seed=seeds()[0],
        device=config["device"],
    shell:
        "{PYTHON} -m repro.figures grid --prepared {input.prepared} --images {params.images} --crop {params.crop}"
        " --bicubic {params.models} --seed {params.seed} --device {params.device} --threads {threads}"
        " --out {output} > {log} 2>&1"


rule figure_tradeoff:
    input:
        lambda wildcards: [f.replace(".csv", ".json") for m in config["table3"]["models"]
                           for f in eval_files(m, [figure_dataset()], config["table3"]["scale"])],
    output:
        params=report("tables/figures/psnr_vs_params.png", category="Figures", caption="../../docs/figures/tradeoff.rst"),
        time=report("tables/figures/psnr_vs_time.png", category="Figures", caption="../../docs/figures/tradeoff.rst"),
    log:
        "logs/figures/tradeoff.log",
    threads: job_settings("table")["threads"]
    resources:
        mem_mb=job_settings("table")["mem_mb"],
        runtime=job_settings("table")["runtime"],
    params:
        dataset=figure_dataset(),
    shell:
        "{PYTHON} -m repro.figures tradeoff --eval-json {input} --dataset {params.dataset}"
        " --out-params {output.params} --out-time {output.time} > {log} 2>&1"
