"""Finding metric weight files in a `metric_weights` folder, and loading pyiqa/torchvision networks offline.

The folder is laid out like `../shared/datasets/metrics` (niqe/..., lpips/v0.1/...); extra files a user drops in
(torchvision's AlexNet, pyiqa's file names, the FID Inception) are found by name anywhere below it. Nothing is
ever downloaded: `offline_hub` points torch.hub and pyiqa at a temporary cache seeded with symlinks to the found
files and makes every download attempt raise.
"""

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch.hub


@dataclass(frozen=True)
class WeightFile:
    """One file a metric needs: accepted names (first = canonical place in the folder) and where its loader looks."""

    what: str
    names: tuple[str, ...]
    hub_path: str | None = None  # relative to the temporary torch hub dir, for loaders that only read the cache


NIQE_PARAMS = WeightFile(
    what="NIQE pristine-model parameters (mu, cov)",
    names=("niqe/niqe_pris_params.npz", "niqe/modelparameters.mat", "niqe_pris_params.npz", "niqe_modelparameters.mat"),
)
LPIPS_ALEX_LINEAR = WeightFile(
    what="LPIPS v0.1 AlexNet linear layers",
    names=("lpips/v0.1/alex.pth", "LPIPS_v0.1_alex-df73285e.pth"),
)
ALEXNET_BACKBONE = WeightFile(
    what="torchvision AlexNet ImageNet backbone (IMAGENET1K_V1)",
    names=("alexnet-owt-7be5be79.pth",),
    hub_path="checkpoints/alexnet-owt-7be5be79.pth",
)
FID_INCEPTION = WeightFile(
    what="FID Inception-v3 (pytorch-fid port of the TF 2015-12-05 graph)",
    names=("pt_inception-2015-12-05-6726825d.pth",),
    hub_path="pyiqa/pt_inception-2015-12-05-6726825d.pth",
)

METRIC_FILES: dict[str, tuple[WeightFile, ...]] = {
    "niqe": (NIQE_PARAMS,),
    "lpips": (LPIPS_ALEX_LINEAR, ALEXNET_BACKBONE),
    "fid": (FID_INCEPTION,),
}


def find_file(folder: Path | None, spec: WeightFile) -> Path | None:
    """The first accepted name present at its relative path, else a distinctive bare name anywhere below `folder`."""
    if folder is None or not folder.is_dir():
        return None
    for name in spec.names:
        if (folder / name).is_file():
            return folder / name
    for name in spec.names:
        if "/" in name:  # a generic file name (alex.pth) is only trusted at its versioned place
            continue
        hits = sorted(p for p in folder.rglob(name) if p.is_file())
        if hits:
            return hits[0]
    return None


def resolve_weights(
    metric_weights: str | Path | None, metrics: tuple[str, ...]
) -> tuple[dict[str, dict[str, Path]], dict[str, str]]:
    """Files found per metric, and a reason for every metric that lacks one (which files, where looked, where to put)."""
    folder = None if metric_weights is None else Path(metric_weights).expanduser().resolve()
    found: dict[str, dict[str, Path]] = {}
    missing: dict[str, str] = {}
    for metric in metrics:
        specs = METRIC_FILES.get(metric, ())
        if not specs:
            continue
        paths = {spec.names[0]: find_file(folder, spec) for spec in specs}
        absent = [spec for spec in specs if paths[spec.names[0]] is None]
        if not absent:
            found[metric] = {name: path for name, path in paths.items() if path is not None}
            continue
        if folder is None:
            where = "no metric_weights folder is configured"
        elif not folder.is_dir():
            where = f"metric_weights folder {folder} does not exist"
        else:
            where = f"not found in metric_weights folder {folder}"
        needs = "; ".join(
            f"{spec.what}: put {spec.names[0]}" + (f" (or {', '.join(spec.names[1:])})" if len(spec.names) > 1 else "")
            for spec in absent
        )
        missing[metric] = f"{where}; needs {needs}"
    return found, missing


def _refuse_download(url: str, *args, **kwargs) -> None:
    raise RuntimeError(f"offline metric loading: refusing to download {url} (place the file in metric_weights)")


@contextlib.contextmanager
def offline_hub(files: dict[str, Path]) -> Iterator[Path]:
    """Temporarily point torch.hub and pyiqa's cache at a fresh dir seeded with `files`; downloads raise.

    `files` maps a cache-relative path (WeightFile.hub_path) to the file to link there. Everything is restored on
    exit, so the user's own cache is neither read nor written.
    """
    import pyiqa.utils.download_util as pyiqa_download

    saved_hub_dir = torch.hub._hub_dir  # None means "derive from $TORCH_HOME"; set_dir(get_dir()) would freeze it
    saved = (torch.hub.download_url_to_file, pyiqa_download.download_url_to_file, pyiqa_download.DEFAULT_CACHE_DIR)
    with tempfile.TemporaryDirectory(prefix="repro-metric-hub-") as tmp:
        hub = Path(tmp)
        for rel, src in files.items():
            (hub / rel).parent.mkdir(parents=True, exist_ok=True)
            (hub / rel).symlink_to(Path(src).resolve())
        torch.hub.set_dir(str(hub))
        torch.hub.download_url_to_file = _refuse_download
        pyiqa_download.download_url_to_file = _refuse_download
        pyiqa_download.DEFAULT_CACHE_DIR = str(hub / "pyiqa")
        try:
            yield hub
        finally:
            torch.hub._hub_dir = saved_hub_dir
            torch.hub.download_url_to_file, pyiqa_download.download_url_to_file, pyiqa_download.DEFAULT_CACHE_DIR = saved
