# Helpers shared by the rules: the interpreter, config lookups and which datasets are present.
import json
import os
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
        step: a key of the config's ``resources`` (prepare, evaluate, table).
    """
    return config["resources"][step]


def present_sets(names):
    """The configured sets found locally (mirror or data_dir); the others are skipped with a note, not downloaded.

    Only the file names are checked here, because the DAG is built at every invocation (a dry run too) and hashing
    would read every image of every configured set each time. The prepare job checks the checksums and fails
    naming the file.

    Args:
        names: dataset names from the config.
    """
    found = []
    for name in names:
        try:
            locate(name, data_mirror=config.get("data_mirror"), data_dir=config["data_dir"], download=False,
                   checksums=False)
            found.append(name)
        except DatasetError as err:
            print(f"[repro] skipping {name}: {str(err).split(';')[0]}", file=sys.stderr)
    if not found:
        raise WorkflowError(f"none of the datasets {names} is available; set data_mirror in the config")
    return found


wildcard_constraints:
    dataset="[A-Za-z0-9]+",
    scale="[2348]",
    model="[a-z0-9_]+",
