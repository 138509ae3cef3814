"""Table 4's cells that were not measured under the paper's conditions: marked, and never compared as if equal.

The paper measures on an A100 (40 GB) at a 640x360 output (LR 90x160 at x4, ``repro.profile.inputs`` preset
``paper``). A profile written by ``python -m repro profile`` records its device, input and kernel forms, and a cell
is compared with the published value only where those conditions hold:

- ``params_m``: always (a count).
- ``flops_g``: at the paper's input, and where every analytic kernel count is of the form the paper's GPU runs: the
  state evolution's recurrent form (CPU backends) has another count than the chunked form fla runs on a GPU.
- the times, ``l2_hit_pct``, ``dram_read_gbps``: on an A100, at the paper's input.

Other cells get the status ``other_device`` or ``other_input``, no delta and no band, and their ``reason`` says what
differs. A profile that lacks these records (written by hand) is compared as the generic join does.

Every row also says which kernel each of its ops ran on (``kernel_notes``: the ``note`` of its cells and a footnote),
since a CPU comparison compares the work put into the kernels as much as the architectures.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from repro.profile.inputs import preset_hw

PAPER_DEVICE = "A100"
NOT_COMPARED = ("other_device", "other_input")
# backends whose state-evolution count is the recurrent form (the paper's A100 runs fla's chunked form)
_CPU_FORMS = {"naive", "fused_recurrent", "fused_chunk"}


def _input_reason(meta: dict) -> str | None:
    h, w = meta["input"]["lr_hw"]
    scale = int(meta.get("scale") or 1)
    try:
        paper = preset_hw("paper", scale)
    except ValueError:
        return f"measured at LR {h}x{w}; the paper's 640x360 output has no LR size at x{scale}"
    if (h, w) != paper:
        return f"measured at LR {h}x{w} x{scale}; the paper at LR {paper[0]}x{paper[1]} (640x360 output)"
    return None


def judge(meta: dict, metric: str) -> tuple[str, str] | None:
    """(status, reason) when the cell of ``metric`` in this profile is not comparable with the paper's, else None.

    Args:
        meta: a profile JSON (``repro/profile/report.py``).
        metric: a Table 4 column.
    """
    if "device_name" not in meta or "input" not in meta or metric == "params_m":
        return None
    device = str(meta["device_name"])
    if metric == "flops_g":
        other = _input_reason(meta)
        if other:
            return "other_input", other
        cpu_forms = [f"{op}: {'/'.join(k['backends'])}" for op, k in (meta.get("kernels") or {}).items()
                     if op in ("state_evolution", "delta_rule") and set(k["backends"]) & _CPU_FORMS]
        if cpu_forms:
            return "other_device", (f"counted in the form that runs on {device} ({', '.join(cpu_forms)}: the "
                                    "recurrence); the paper's A100 runs the chunked form")
        return None
    if PAPER_DEVICE not in device:
        return "other_device", f"measured on {device}; the paper on an A100 40G"
    other = _input_reason(meta)
    return ("other_input", other) if other else None


def mark_not_compared(cells: pd.DataFrame) -> pd.DataFrame:
    """Table 4's joined cells with the cells measured under other conditions marked (see the module docstring)."""
    cells = cells.copy()
    metas: dict[str, dict] = {}
    for i, row in cells.iterrows():
        path = row["result_file"]
        if not path or (isinstance(path, float) and math.isnan(path)) or math.isnan(row["reproduced"]):
            continue
        if path not in metas:
            metas[path] = json.loads(Path(path).read_text())
        verdict = judge(metas[path], row["metric"])
        if verdict is not None and not math.isnan(row["published"]):
            cells.loc[i, ["status", "reason"]] = verdict
            cells.loc[i, ["delta", "band"]] = float("nan")
    return cells


def kernels_text(meta: dict) -> str:
    """``"state_evolution: fused_recurrent; scan2d: ..."`` from a profile's ``kernels`` record ('' when none)."""
    return "; ".join(f"{op}: {'/'.join(k['backends'])}" for op, k in sorted((meta.get("kernels") or {}).items()))


def kernel_notes(cells: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Table 4's cells with the kernels their profile ran in ``note``, and one footnote line listing them per row."""
    cells = cells.copy()
    per_model: dict[str, str] = {}
    profiled = set()
    for path in dict.fromkeys(p for p in cells["result_file"] if isinstance(p, str) and p):
        rows = cells["result_file"] == path
        model = str(cells.loc[rows, "model"].iloc[0])
        profiled.add(model)
        text = kernels_text(json.loads(Path(path).read_text()))
        if not text:
            continue
        per_model[model] = text
        cells.loc[rows, "note"] = [f"{n}; kernels: {text}" if n else f"kernels: {text}"
                                   for n in cells.loc[rows, "note"].fillna("")]
    others = sorted(profiled - set(per_model))
    line = "Kernels as run: " + "; ".join(f"{m} ({t})" for m, t in sorted(per_model.items()))
    if others:
        line += "; no custom kernel: " + ", ".join(others)
    return cells, [line] if per_model else []
