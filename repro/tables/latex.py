"""A booktabs LaTeX table from the joined cells, laid out like the paper: one row per model (per dataset block),
one column per metric, each cell "reproduced (published)". Missing cells show an em dash and a footnote with the reason
and the protocol; Table 4 cells measured on another device or input than the paper's carry a footnote saying what
differs; rows whose published numbers come from elsewhere than the paper (e.g. a literature Bicubic row) carry a
footnote naming that source.
"""

from __future__ import annotations

import math
from string import ascii_lowercase

import pandas as pd

from repro.tables.table4 import NOT_COMPARED

METRIC_HEADERS = {
    "psnr": r"PSNR$\uparrow$", "ssim": r"SSIM$\uparrow$", "niqe": r"NIQE$\downarrow$", "lpips": r"LPIPS$\downarrow$",
    "rmse": r"RMSE$\downarrow$", "sam": r"SAM$\downarrow$", "fid": r"FID$\downarrow$", "flops_g": "FLOPs (G)",
    "train_time_s": "Training (s)", "infer_time_s": "Inference (s)", "l2_hit_pct": r"L2 hit (\%)",
    "dram_read_gbps": "MemRead (GB/s)", "params_m": "Params (M)",
}

# Per table: the columns that start a new block of rows, and the metric columns in the paper's order.
LAYOUT = {
    "table2": (("dataset",), ("psnr", "ssim", "lpips", "fid")),
    "table3": (("dataset", "scale"), ("psnr", "ssim", "niqe", "lpips", "rmse", "sam")),
    "table4": ((), ("flops_g", "train_time_s", "infer_time_s", "l2_hit_pct", "dram_read_gbps", "params_m")),
    "table5": (("component",), ("psnr", "ssim", "niqe", "lpips", "rmse", "sam")),
}

_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
            "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def escape(text: str) -> str:
    """Text made safe for LaTeX."""
    return "".join(_ESCAPES.get(ch, ch) for ch in str(text))


class _Footnotes:
    """Footnote texts, each numbered once by first use (a, b, c, ...)."""

    def __init__(self) -> None:
        self.marks: dict[str, str] = {}

    def mark(self, text: str) -> str:
        if text not in self.marks:
            n = len(self.marks)
            self.marks[text] = ascii_lowercase[n % 26] * (n // 26 + 1)
        return rf"\textsuperscript{{{self.marks[text]}}}"

    def lines(self) -> list[str]:
        return [rf"\textsuperscript{{{m}}}\,{escape(t)}\\" for t, m in self.marks.items()]


def _number(value: float, decimals: int) -> str:
    return "---" if math.isnan(value) else f"{value:.{decimals}f}"


def _cell(cell, notes: _Footnotes) -> str:
    """One "reproduced (published)" entry; `cell` is a row of the joined table (a namedtuple)."""
    published = f" ({_number(cell.published, cell.decimals)})"
    if cell.status == "missing":
        # A cell of a run that exists names the run's protocol; a cell with no run at all has none to name.
        reason = f"{cell.reason}; protocol {cell.protocol}" if cell.protocol else cell.reason
        return "---" + notes.mark(reason) + published
    if cell.status in NOT_COMPARED:  # Table 4: measured on another device or input; the footnote says which
        return _number(cell.reproduced, cell.decimals) + notes.mark(f"not compared: {cell.reason}") + published
    return _number(cell.reproduced, cell.decimals) + published


def _block_title(block: pd.DataFrame, columns: tuple[str, ...]) -> str:
    first = block.iloc[0]
    if columns == ("component",):
        paper_names = [label.split(":", 1)[0] for label in block["label"] if ":" in label]
        name = paper_names[0] if paper_names else first.component
        datasets = ", ".join(sorted(set(block["dataset"]) - {""}))
        return f"{escape(name)} ({escape(datasets)})" if datasets else escape(name)
    title = escape(first.dataset)
    return title + (rf" ($\times{first.scale}$)" if "scale" in columns and first.scale else "")


def _row_label(cell) -> str:
    return escape(cell.label.split(":", 1)[1].strip() if ":" in cell.label else cell.label)


def to_latex(cells: pd.DataFrame, table_id: str, caption: str, paper_source: str = "") -> str:
    """LaTeX source of one table (booktabs; needs only \\usepackage{booktabs}).

    Args:
        cells: the joined cells of one table (see `repro.tables.join.join`).
        table_id: "table2" ... "table5"; selects the layout.
        caption: the caption text (escaped here).
        paper_source: the paper's reference; rows whose published source differs get a footnote naming it.
    """
    if table_id not in LAYOUT:
        raise ValueError(f"no LaTeX layout for {table_id!r}; expected one of {sorted(LAYOUT)}")
    block_columns, paper_metrics = LAYOUT[table_id]
    metrics = list(paper_metrics) + [m for m in dict.fromkeys(cells["metric"]) if m not in paper_metrics]
    row_columns = ["model", "component", "variant"]
    notes = _Footnotes()
    lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{escape(caption)}}}", rf"\label{{tab:{table_id}}}",
             r"\begin{tabular}{l" + "c" * len(metrics) + "}", r"\toprule",
             " & ".join(["Method"] + [METRIC_HEADERS.get(m, escape(m)) for m in metrics]) + r" \\"]
    blocks = cells.groupby(list(block_columns), sort=False) if block_columns else [((), cells)]
    for _, block in blocks:
        lines.append(r"\midrule")
        if block_columns:
            lines.append(rf"\multicolumn{{{len(metrics) + 1}}}{{l}}{{\textit{{{_block_title(block, block_columns)}}}}} \\")
        for _, row in block.groupby(row_columns, sort=False):
            first = row.iloc[0]
            label = _row_label(first)
            sources = set(row["source"]) - {"", paper_source}
            for source in sorted(sources):
                label += notes.mark(f"published values: {source}")
            by_metric = {cell.metric: cell for cell in row.itertuples(index=False)}
            entries = [_cell(by_metric[m], notes) if m in by_metric else "" for m in metrics]
            lines.append(" & ".join([label] + entries) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    protocols = sorted(set(cells["protocol"]) - {""})
    footer = [r"\par\smallskip\footnotesize", r"Cells: reproduced (published).\\"]
    if protocols:
        footer.append(escape("Protocol: " + ", ".join(protocols)) + r".\\")
    lines += footer + notes.lines() + [r"\end{table}"]
    return "\n".join(lines) + "\n"
