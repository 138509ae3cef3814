# Table 2 and Fig. 9: inpainting. Each set is prepared once with fixed masks (results/prepared/inpaint/<Set>/,
# manifest.tsv), so every model sees the same holes; the inpainting rows train on the train_inpaint section (crops
# with free-form and irregular masks), two stages like SR, and are evaluated with the known pixels pasted back.
# FFHQ is the stand-in for the paper's Mural set, which is not public (the table says so).

TABLE2 = config["table2"]


def table2_row(model):
    """The paper's row name of an inpainting model: diffrwkvir_inpaint -> diffrwkvir."""
    return model.removesuffix("_inpaint")


def table2_sets():
    """Table 2's configured sets whose images are here (the others' cells say the set is absent)."""
    from repro.data.inpaint import INPAINT_SETS

    wanted = {s: INPAINT_SETS[s].dataset for s in TABLE2["datasets"]}
    here = set(present_sets(list(wanted.values()), quiet=True, required=False))
    return [s for s, dataset in wanted.items() if dataset in here]


def inpaint_eval_files(model, sets):
    return expand("results/eval/{model}/seed{seed}/{iset}_inpaint.csv", model=model, seed=seeds(), iset=sets)


rule prepare_inpaint:
    output:
        directory("results/prepared/inpaint/{iset}"),
    log:
        "logs/prepare/inpaint/{iset}.log",
    threads: job_settings("prepare")["threads"]
    resources:
        mem_mb=job_settings("prepare")["mem_mb"],
        runtime=job_settings("prepare")["runtime"],
    params:
        mirror=mirror_arg(),
        data_dir=config["data_dir"],
        seed=TABLE2.get("mask_seed", 0),
    shell:
        "{PYTHON} -m repro prepare-inpaint --dataset {wildcards.iset} --out {output} --seed {params.seed}"
        " {params.mirror} --data-dir {params.data_dir} --threads {threads} > {log} 2>&1"


rule train_inpaint:
    input:
        stage1=stage1_run("results/train/{model}/inpaint/seed{seed}/final.pt"),
    output:
        "results/train/{model}/inpaint/seed{seed}/final.pt",
    log:
        "logs/train/{model}/inpaint/seed{seed}.log",
    benchmark:
        "results/benchmarks/train/{model}/inpaint/seed{seed}.tsv"
    threads: job_settings("train")["threads"]
    resources:
        mem_mb=job_settings("train")["mem_mb"],
        runtime=job_settings("train")["runtime"],
        gpu=job_settings("train").get("gpu", 0),
    params:
        launcher=launcher,
        scale=1,  # an inpainting network has none (repro.train.config.resolve sets 1 whatever is passed)
        profile=lambda wildcards: shlex.quote(train_profile(wildcards.model)),
        switches="",
        stage1=stage1_arg,
        run=lambda wildcards, output: os.path.dirname(output[0]),
        device=config["device"],
    shell:
        TRAIN_SHELL


rule evaluate_inpaint:
    input:
        checkpoint="results/train/{model}/inpaint/seed{seed}/final.pt",
        prepared="results/prepared/inpaint/{iset}",
    output:
        csv="results/eval/{model}/seed{seed}/{iset}_inpaint.csv",
        json="results/eval/{model}/seed{seed}/{iset}_inpaint.json",
        images=directory("results/eval/{model}/seed{seed}/{iset}_inpaint_images"),
    log:
        "logs/evaluate/{model}/seed{seed}/{iset}_inpaint.log",
    benchmark:
        "results/benchmarks/evaluate/{model}/seed{seed}/{iset}_inpaint.tsv"
    threads: job_settings("evaluate")["threads"]
    resources:
        mem_mb=job_settings("evaluate")["mem_mb"],
        runtime=job_settings("evaluate")["runtime"],
        gpu=job_settings("evaluate").get("gpu", 0),
    params:
        weights=weights_arg(),
        device=config["device"],
    shell:
        "{PYTHON} -m repro evaluate-inpaint --checkpoint {input.checkpoint} --seed {wildcards.seed}"
        " --dataset {wildcards.iset} --prepared {input.prepared} --out-csv {output.csv} --out-json {output.json}"
        " --save-images {output.images} {params.weights} --device {params.device} --threads {threads} --quiet"
        " > {log} 2>&1"


def table2_budget(model):
    """One sentence on what an inpainting row was trained with (train updated by train_inpaint and the model's own)."""
    from repro.train.config import resolve
    from repro.train.data_inpaint import DEFAULT_PRESETS

    steps = [str(resolve(config, model=m, scale=1)["train"]["steps"]) for m in (stage1_of(model), model) if m]
    t = resolve(config, model=model, scale=1)["train"]
    presets = (t.get("masks") or {}).get("presets", DEFAULT_PRESETS)
    return (f"{' + '.join(steps)} steps (stage 1 + stage 2) of batch {t['batch']}, {t['patch']}x{t['patch']} crops "
            f"from {' + '.join(t['sets'])} with {'/'.join(presets)} "
            f"free-form and irregular masks")


def table2_args():
    """--eval-as, --dataset-as, --absent-dataset and --footnote arguments of the table2 job."""
    from repro.data.inpaint import INPAINT_SETS

    here = table2_sets()
    args = [f"--eval-as {table2_row(m)} {f}" for m in TABLE2["models"] for f in inpaint_eval_files(m, here)]
    args += [f"--dataset-as {s} {INPAINT_SETS[s].stand_in_for}" for s in here if INPAINT_SETS[s].stand_in_for]
    args += [f"--absent-dataset {s} " + shlex.quote(f"{s} is not in data_mirror or data_dir")
             for s in TABLE2["datasets"] if s not in here]
    notes = [f"Profile: {config.get('profile_name', 'custom')} (every trained row on the same data and budget: "
             + "; ".join(sorted({table2_budget(m) for m in TABLE2["models"]})) + f"); training seeds "
             f"{', '.join(map(str, seeds()))}.", f"Workflow host: {machine()}."]
    return " ".join(args + ["--footnote " + shlex.quote(n) for n in notes])


rule table2:
    input:
        evals=lambda wildcards: [f for m in TABLE2["models"] for f in inpaint_eval_files(m, table2_sets())],
        published=os.path.join(PUBLISHED, "table2.csv"),
    output:
        csv=report("tables/table2.csv", category="Tables", caption="../../docs/figures/table.rst"),
        tex="tables/table2.tex",
    log:
        "logs/tables/table2.log",
    threads: job_settings("table")["threads"]
    resources:
        mem_mb=job_settings("table")["mem_mb"],
        runtime=job_settings("table")["runtime"],
    params:
        published_dir=PUBLISHED,
        tolerances=json.dumps(config["tolerances"]),
        args=lambda wildcards: table2_args(),
    shell:
        "{PYTHON} -m repro table --table 2 {params.args} --published {params.published_dir}"
        " --tolerances '{params.tolerances}' --out-csv {output.csv} --out-tex {output.tex} > {log} 2>&1"


def fig9_images(iset):
    """The first `figure_images` images of a set (the prepared set keeps the source's file stems)."""
    from repro.data.inpaint import INPAINT_SETS
    from repro.data.registry import image_files, locate

    folder = locate(INPAINT_SETS[iset].dataset, data_mirror=config.get("data_mirror"), data_dir=config["data_dir"],
                    download=False, checksums=False)
    return [p.stem for p in image_files(folder)[: TABLE2.get("figure_images", 2)]]


rule figure_inpaint_grid:
    input:
        prepared="results/prepared/inpaint/{iset}",
        evals=lambda wildcards: [f"results/eval/{m}/seed{seeds()[0]}/{wildcards.iset}_inpaint.csv"
                                 for m in TABLE2["models"]],
    output:
        report("tables/figures/fig9_{iset}.png", category="Figures", caption="../../docs/figures/inpaint_grid.rst"),
    log:
        "logs/figures/fig9_{iset}.log",
    threads: job_settings("table")["threads"]
    resources:
        mem_mb=job_settings("table")["mem_mb"],
        runtime=job_settings("table")["runtime"],
    params:
        images=lambda wildcards: " ".join(fig9_images(wildcards.iset)),
        models=lambda wildcards, input: " ".join(f"--model {shlex.quote(row_label(m))} {f}"
                                                 for m, f in zip(TABLE2["models"], input.evals)),
    shell:
        "{PYTHON} -m repro.figures inpaint-grid --prepared {input.prepared} --images {params.images}"
        " {params.models} --out {output} > {log} 2>&1"
