# Evaluation: one `python -m repro evaluate` job per (row, dataset, scale[, seed]) -> per-image CSV + JSON sidecar.
# Rows with no weights (Bicubic) are evaluated as they are; trained rows from their run's final.pt (the EMA weights of
# the last step: best.pt is chosen on the validation set, Set5, which Table 3 also reports); the ablation variants
# from theirs; a baseline's official checkpoint, when the config names one, from that file.

EVALUATE_SHELL = (
    "{PYTHON} -m repro evaluate {params.model} --dataset {wildcards.dataset} --scale {wildcards.scale}"
    " --prepared {input.prepared} --out-csv {output.csv} --out-json {output.meta} {params.weights}"
    " --device {params.device} --threads {threads} --quiet > {log} 2>&1"
)


def evaluate_resources():
    job = job_settings("evaluate")
    return dict(mem_mb=job["mem_mb"], runtime=job["runtime"], gpu=job.get("gpu", 0))


rule evaluate_sr:
    input:
        prepared="results/prepared/{dataset}_x{scale}",
    output:
        csv="results/eval/{model}/{dataset}_x{scale}.csv",
        meta="results/eval/{model}/{dataset}_x{scale}.json",
    wildcard_constraints:
        model="|".join(UNTRAINED),
    log:
        "logs/evaluate/{model}/{dataset}_x{scale}.log",
    benchmark:
        "results/benchmarks/evaluate/{model}/{dataset}_x{scale}.tsv"
    threads: job_settings("evaluate")["threads"]
    resources:
        **evaluate_resources(),
    params:
        model="--model {model}",
        weights=weights_arg(),
        device=config["device"],
    shell:
        EVALUATE_SHELL


rule evaluate_trained:
    input:
        prepared="results/prepared/{dataset}_x{scale}",
        checkpoint="results/train/{model}/x{scale}/seed{seed}/final.pt",
    output:
        csv="results/eval/{model}/seed{seed}/{dataset}_x{scale}.csv",
        meta="results/eval/{model}/seed{seed}/{dataset}_x{scale}.json",
    log:
        "logs/evaluate/{model}/seed{seed}/{dataset}_x{scale}.log",
    benchmark:
        "results/benchmarks/evaluate/{model}/seed{seed}/{dataset}_x{scale}.tsv"
    threads: job_settings("evaluate")["threads"]
    resources:
        **evaluate_resources(),
    params:
        # the checkpoint names its model and constructor overrides; the diffusion noise seed is the training seed
        model=lambda wildcards, input: f"--checkpoint {input.checkpoint} --seed {wildcards.seed}",
        weights=weights_arg(),
        device=config["device"],
    shell:
        EVALUATE_SHELL


rule evaluate_ablation:
    input:
        prepared="results/prepared/{dataset}_x{scale}",
        checkpoint="results/ablation/{component}/{variant}/train/diffrwkvir/x{scale}/seed{seed}/final.pt",
    output:
        csv="results/ablation/{component}/{variant}/eval/seed{seed}/{dataset}_x{scale}.csv",
        meta="results/ablation/{component}/{variant}/eval/seed{seed}/{dataset}_x{scale}.json",
    log:
        "logs/ablation/{component}/{variant}/eval/seed{seed}/{dataset}_x{scale}.log",
    benchmark:
        "results/benchmarks/ablation/{component}/{variant}/eval/seed{seed}/{dataset}_x{scale}.tsv"
    threads: job_settings("evaluate")["threads"]
    resources:
        **evaluate_resources(),
    params:
        model=lambda wildcards, input: f"--checkpoint {input.checkpoint} --seed {wildcards.seed}",
        weights=weights_arg(),
        device=config["device"],
    shell:
        EVALUATE_SHELL


# The authors' weights at the paper's size (the registry's default constructor), tested with the official procedure.
rule evaluate_official:
    input:
        prepared="results/prepared/{dataset}_x{scale}",
        checkpoint=lambda wildcards: official_checkpoint(wildcards.model),
    output:
        csv="results/eval/{model}/official/{dataset}_x{scale}.csv",
        meta="results/eval/{model}/official/{dataset}_x{scale}.json",
    log:
        "logs/evaluate/{model}/official/{dataset}_x{scale}.log",
    benchmark:
        "results/benchmarks/evaluate/{model}/official/{dataset}_x{scale}.tsv"
    threads: job_settings("evaluate")["threads"]
    resources:
        **evaluate_resources(),
    params:
        model=lambda wildcards, input: f"--model {wildcards.model} --checkpoint {input.checkpoint} "
        + official_procedure_arg(wildcards.model),
        weights=weights_arg(),
        device=config["device"],
    shell:
        EVALUATE_SHELL
