"""The run folder's logs: ``metrics.csv`` and TensorBoard."""

from __future__ import annotations

import csv
from pathlib import Path


class MetricsLog:
    """``metrics.csv``: a row per logged step; on resume, rows after the resumed step are dropped (they belong to a
    run that was cut off before its next checkpoint)."""

    COLUMNS = ("step", "lr", "loss", "terms", "seconds", "skipped", "val_psnr", "val_ssim")

    def __init__(self, path: Path, resume_step: int) -> None:
        self.path = path
        rows = []
        if path.is_file() and resume_step > 0:
            with open(path) as fh:
                rows = [r for r in csv.DictReader(fh) if int(r["step"]) <= resume_step]
        with open(path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=self.COLUMNS)
            writer.writeheader()
            writer.writerows(rows)

    def write(self, **row) -> None:
        with open(self.path, "a", newline="") as fh:
            csv.DictWriter(fh, fieldnames=self.COLUMNS).writerow(row)


def tensorboard(out: Path):
    """A TensorBoard writer on ``out/tb`` (imported on use: the package is only needed by a training run)."""
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(out / "tb"))
