# Training: one `python -m repro train` job per (model, scale, seed); a stage-2 model starts from its stage-1 run.
#
# The declared output is the run's final.pt alone. A job killed mid-run leaves its checkpoints/ (Snakemake only
# removes declared outputs), and the rerun continues from the last one (--resume auto); a job whose config changed
# (its profile param) sets the old run aside and starts afresh (--restart-on-change). A training rule that gets more
# than one GPU (resources: gpu) runs under torchrun on one node.


def launcher(wildcards, resources):
    """python, or torchrun with one process per GPU when the job asks for several."""
    gpus = int(getattr(resources, "gpu", 0) or 0)
    if gpus > 1:
        return f"{PYTHON} -m torch.distributed.run --standalone --nproc-per-node {gpus}"
    return PYTHON


def stage1_run(pattern):
    """Input function: the stage-1 final.pt a stage-2 job needs (none for a single-stage model).

    Args:
        pattern: the final.pt path of the stage-1 run, with {model} standing for the stage-1 model's name.
    """

    def inputs(wildcards):
        first = stage1_of(wildcards.model)
        return [] if first is None else [pattern.format(**{**wildcards, "model": first})]

    return inputs


def stage1_arg(wildcards, input):
    return f"--stage1 {os.path.dirname(input.stage1[0])}" if input.stage1 else ""


TRAIN_SHELL = (
    "{params.launcher} -m repro train --model {wildcards.model} --scale {params.scale}"
    " --profile-json {params.profile} --set train.seed={wildcards.seed} {params.switches} {params.stage1}"
    " --out {params.run} --resume auto --restart-on-change --device {params.device} --threads {threads} --quiet"
    " > {log} 2>&1"
)


rule train:
    input:
        stage1=stage1_run("results/train/{model}/x{scale}/seed{seed}/final.pt"),
    output:
        "results/train/{model}/x{scale}/seed{seed}/final.pt",
    log:
        "logs/train/{model}/x{scale}/seed{seed}.log",
    benchmark:
        "results/benchmarks/train/{model}/x{scale}/seed{seed}.tsv"
    threads: job_settings("train")["threads"]
    resources:
        mem_mb=job_settings("train")["mem_mb"],
        runtime=job_settings("train")["runtime"],
        gpu=job_settings("train").get("gpu", 0),
    params:
        launcher=launcher,
        scale=lambda wildcards: wildcards.scale,
        profile=lambda wildcards: shlex.quote(train_profile(wildcards.model)),
        switches="",
        stage1=stage1_arg,
        run=lambda wildcards, output: os.path.dirname(output[0]),
        device=config["device"],
    shell:
        TRAIN_SHELL


# Table 5: DiffRWKVIR with one switch changed (models/dseb.py: shift, mixer, ffn, scan), trained like the Table 3 row.
rule train_ablation:
    input:
        stage1=stage1_run("results/ablation/{component}/{variant}/train/{model}/x{scale}/seed{seed}/final.pt"),
    output:
        "results/ablation/{component}/{variant}/train/{model}/x{scale}/seed{seed}/final.pt",
    log:
        "logs/ablation/{component}/{variant}/train/{model}/x{scale}/seed{seed}.log",
    benchmark:
        "results/benchmarks/ablation/{component}/{variant}/train/{model}/x{scale}/seed{seed}.tsv"
    threads: job_settings("train")["threads"]
    resources:
        mem_mb=job_settings("train")["mem_mb"],
        runtime=job_settings("train")["runtime"],
        gpu=job_settings("train").get("gpu", 0),
    params:
        launcher=launcher,
        scale=lambda wildcards: wildcards.scale,
        profile=lambda wildcards: shlex.quote(train_profile(wildcards.model)),
        switches=lambda wildcards: f"--set model_args.{wildcards.component}={wildcards.variant}",
        stage1=stage1_arg,
        run=lambda wildcards, output: os.path.dirname(output[0]),
        device=config["device"],
    shell:
        TRAIN_SHELL
