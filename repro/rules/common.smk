# Helpers shared by the rules: the interpreter, config lookups and which datasets are present.
import json
import os
import shlex
import sys
from pathlib import Path

# repro/, models/, baselines/, kernels/ import from the repo root, here and in every job's `python -m repro`.
REPO = workflow.basedir
sys.path.insert(0, REPO)
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH")) if p)
PUBLISHED = os.path.join(REPO, "tables", "published")

from snakemake.exceptions import WorkflowError

from repro.data.registry import DatasetError, locate

PYTHON = sys.executable


def mirror_arg():
    return f"--data-mirror {config['data_mirror']}" if config.get("data_mirror") else ""


def weights_arg():
    return f"--metric-weights {config['metric_weights']}" if config.get("metric_weights") else ""


def job_settings(step):
    """The config's threads, mem_mb and runtime (minutes) for the jobs of one step.

    Args:
        step: a key of the config's ``resources`` (prepare, train, evaluate, table).
    """
    return config["resources"][step]


def present_sets(names, quiet=False, required=True):
    """The configured sets found locally (mirror or data_dir); the others are skipped with a note, not downloaded.

    Only the file names are checked here, because the DAG is built at every invocation (a dry run too) and hashing
    would read every image of every configured set each time. The prepare job checks the checksums and fails
    naming the file.

    Args:
        names: dataset names from the config.
        quiet: do not name the skipped sets (when another call already did).
        required: none of them here is an error (else an empty list: a table whose sets are all absent, such as
            Table 2 on a mirror without the inpainting samples, says so cell by cell).
    """
    found = []
    for name in names:
        try:
            locate(name, data_mirror=config.get("data_mirror"), data_dir=config["data_dir"], download=False,
                   checksums=False)
            found.append(name)
        except DatasetError as err:
            if not quiet:
                print(f"[repro] skipping {name}: {str(err).split(';')[0]}", file=sys.stderr)
    if not found and required:
        raise WorkflowError(f"none of the datasets {names} is available; set data_mirror in the config")
    return found


def seeds():
    """The training seeds: every trained row is trained and evaluated once per seed (tables: mean +- std)."""
    return config.get("seeds", [0])


def stage1_of(model):
    """The stage-1 model a two-stage model (DiffIR, DiffRWKVIR) is trained from, else None (from the registry)."""
    from repro import get_descriptor

    if get_descriptor(model).stage != 2:
        return None
    first = f"{model}_s1"
    if get_descriptor(first).stage != 1:
        raise WorkflowError(f"{model} is a stage-2 model but {first} is not its stage-1 model in the registry")
    return first


# Rows with no weights: evaluated as they are (results/eval/<model>/<Dataset>_x<s>.csv), never trained.
UNTRAINED = ("bicubic",)


def eval_files(model, datasets, scale):
    """The evaluation results of one Table 3 row: one per dataset, and per seed for a trained model."""
    if model in UNTRAINED:
        return expand("results/eval/{model}/{dataset}_x{scale}.csv", model=model, dataset=datasets, scale=scale)
    return expand("results/eval/{model}/seed{seed}/{dataset}_x{scale}.csv", model=model, seed=seeds(),
                  dataset=datasets, scale=scale)


def train_profile(model):
    """The part of the workflow's config one training job reads, as JSON for `repro train --profile-json`.

    It is a param of the job, so that changing one model's settings (or the train section) reruns that model's
    training and what depends on it, and nothing else.
    """
    from repro import get_descriptor
    from repro.train.config import ConfigError, resolve

    stage1 = stage1_of(model)
    try:
        resolve(config, model=model, scale=4)  # fails early, naming the key, on a bad models.<name> entry
    except ConfigError as err:
        raise WorkflowError(str(err)) from err
    models = {m: config["models"][m] for m in (model, stage1) if m and m in config.get("models", {})}
    subset = {"train": config["train"], "models": models, "data_mirror": config.get("data_mirror"),
              "data_dir": config["data_dir"]}
    if get_descriptor(model).task == "inpaint":
        subset["train_inpaint"] = config.get("train_inpaint") or {}
    return json.dumps(subset, sort_keys=True, separators=(",", ":"))


def official_checkpoint(model):
    """The official checkpoint the config names for a baseline (config `official_weights`), checked to exist."""
    path = (config.get("official_weights") or {}).get(model)
    if not path:
        raise WorkflowError(f"no official checkpoint for {model}: set official_weights.{model} in the config")
    if not os.path.isfile(path):
        raise WorkflowError(f"official_weights.{model}: {path} does not exist (download the authors' checkpoint)")
    return path


def official_procedure_arg(model):
    """--procedure official where the authors' test procedure is recorded (repro/test_procedures.py), else ours."""
    from repro import get_descriptor
    from repro.test_procedures import OFFICIAL

    return "--procedure official" if get_descriptor(model).family in OFFICIAL else ""


wildcard_constraints:
    dataset="[A-Za-z0-9]+",
    scale="[2348]",
    model="[a-z0-9_]+",
    seed="[0-9]+",
    component="shift|mixer|ffn|scan",
    variant="[a-z0-9_]+",
    iset="[A-Za-z0-9-]+",
