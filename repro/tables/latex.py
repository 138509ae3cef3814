"""A booktabs LaTeX table from the joined cells, laid out like the paper: one row per model (per dataset block),
one column per metric, each cell "reproduced (published)", the reproduced value as "mean±std" when it comes from
two or more training seeds. In each block and column the best reproduced value is bold and the second underlined
(`repro.tables.ranking`). Missing cells show an em dash and a footnote with the reason and the protocol; Table 4
cells measured on another device or input than the paper's carry a footnote saying what differs; rows whose
published numbers come from elsewhere than the paper (e.g. a literature Bicubic row) carry a footnote naming that
source; a column with published values flagged as contradictory (`repro.tables.consistency`) carries one footnote per
kind of flag on its header. The footer names the protocols and the caller's own footnotes (profile, budget, hardware).

Table 5's blocks are its four ablation groups (token shift, backbone, MLP variants, scan), each titled with the
dataset it is measured on; its rows are labelled with the variant as the paper prints it.

Table 2 (`repro.tables.table2`): a row whose every cell is missing for a reason of `ROW_MARKS` (the published-only
rows) carries that mark on its label, explained once in the footer, and no footnote per cell; a cell with a
`footnote` (the image count of a reproduced FID) gets it; a block filled by a stand-in dataset
(`repro.tables.stand_in`) is titled with the stand-in and a footnote (`block_titles`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from string import ascii_lowercase

import pandas as pd

from repro.tables.consistency import FLAGGED_METRIC, flag_footnote
from repro.tables.official import is_official
from repro.tables.ranking import BEST, SECOND, rank_marks
from repro.tables.table2 import ROW_MARKS
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


def _seeds(cell) -> int:
    n = getattr(cell, "n_seeds", 1)
    return 1 if pd.isna(n) else int(n)


def _reproduced(cell, rank: str | None) -> str:
    """The reproduced number, with the seeds' std when there are several, bold/underlined by its rank."""
    text = _number(cell.reproduced, cell.decimals)
    if _seeds(cell) >= 2 and not math.isnan(cell.std):
        text += rf"$\pm${cell.std:.{cell.decimals}f}"
    if rank == BEST:
        return rf"\textbf{{{text}}}"
    if rank == SECOND:
        return rf"\underline{{{text}}}"
    return text


def _text(cell, field: str) -> str:
    value = getattr(cell, field, "")
    return value if isinstance(value, str) else ""


def _row_mark(row: pd.DataFrame) -> str | None:
    """The `ROW_MARKS` reason every cell of a row is missing for, if any (a published-only row of Table 2)."""
    reasons = set(row["reason"])
    if len(reasons) == 1 and (row["status"] == "missing").all() and (reason := reasons.pop()) in ROW_MARKS:
        return reason
    return None


def _cell(cell, notes: _Footnotes, rank: str | None = None, row_marked: bool = False) -> str:
    """One "reproduced (published)" entry; `cell` is a row of the joined table (a namedtuple)."""
    published = f" ({_number(cell.published, cell.decimals)})"
    if row_marked:  # the row label carries the reason
        return "---" + published
    if _text(cell, "footnote"):
        return _reproduced(cell, rank) + notes.mark(cell.footnote) + published
    if cell.status == "missing":
        # A cell of a run that exists names the run's protocol; a cell with no run at all has none to name.
        reason = f"{cell.reason}; protocol {cell.protocol}" if cell.protocol else cell.reason
        return "---" + notes.mark(reason) + published
    if cell.status in NOT_COMPARED:  # Table 4: measured on another device or input; the footnote says which
        return _reproduced(cell, rank) + notes.mark(f"not compared: {cell.reason}") + published
    return _reproduced(cell, rank) + published


def _header(metric: str, cells: pd.DataFrame, notes: _Footnotes) -> str:
    """A metric's column header, with a footnote per kind of contradictory published value in that column."""
    header = METRIC_HEADERS.get(metric, escape(metric))
    # official-weights rows repeat their model's published values: counting them would count a number twice
    column = cells[(cells["metric"] == metric) & ~cells["model"].map(is_official)]
    flags = column["published_flag"].fillna("") if "published_flag" in column.columns else pd.Series(dtype=str)
    for kind in dict.fromkeys(f for f in flags if f):
        if FLAGGED_METRIC.get(kind) == metric:
            header += notes.mark(flag_footnote(kind, int((flags == kind).sum()), int(column["published"].notna().sum())))
    return header


def _block_title(block: pd.DataFrame, columns: tuple[str, ...], titles: Mapping[str, tuple[str, str]],
                 notes: _Footnotes) -> str:
    first = block.iloc[0]
    if first.dataset in titles:  # a stand-in dataset: its name, and a footnote on what the block compares
        title, footnote = titles[first.dataset]
        return escape(title) + (notes.mark(footnote) if footnote else "")
    if columns == ("component",):
        paper_names = [label.split(":", 1)[0] for label in block["label"] if ":" in label]
        name = paper_names[0] if paper_names else first.component
        datasets = ", ".join(sorted(set(block["dataset"]) - {""}))
        return f"{escape(name)} ({escape(datasets)})" if datasets else escape(name)
    title = escape(first.dataset)
    return title + (rf" ($\times{first.scale}$)" if "scale" in columns and first.scale else "")


def _row_label(cell, block_dataset: str) -> str:
    label = cell.label.split(":", 1)[1].strip() if ":" in cell.label else cell.label
    # a Table 5 variant evaluated on another dataset than its block's is a row of its own and says so
    if cell.dataset and cell.dataset != block_dataset:
        label += f" ({cell.dataset})"
    return escape(label)


def _footer(cells: pd.DataFrame, marked: bool, footnotes: Sequence[str], row_marks: Sequence[str] = ()) -> list[str]:
    footer = [r"\par\smallskip\footnotesize", r"Cells: reproduced (published).\\"]
    for reason in row_marks:
        symbol, text = ROW_MARKS[reason]
        footer.append(rf"{symbol}\,{escape(text)}.\\")
    if marked:
        footer.append(r"\textbf{Bold}: best, \underline{underlined}: second best reproduced value of a block and column.\\")
    if "n_seeds" in cells.columns and (cells["n_seeds"].fillna(0) >= 2).any():
        footer.append(r"Reproduced $m\pm s$: mean and sample standard deviation over training seeds.\\")
    protocols = sorted(set(cells["protocol"]) - {""})
    if protocols:
        footer.append(escape("Protocol: " + ", ".join(protocols)) + r".\\")
    return footer + [escape(text) + r"\\" for text in footnotes]


def to_latex(cells: pd.DataFrame, table_id: str, caption: str, paper_source: str = "",
             footnotes: Sequence[str] = (), block_titles: Mapping[str, tuple[str, str]] | None = None) -> str:
    """LaTeX source of one table (booktabs; needs only \\usepackage{booktabs}).

    Args:
        cells: the joined cells of one table (see `repro.tables.join.join`).
        table_id: "table2" ... "table5"; selects the layout.
        caption: the caption text (escaped here).
        paper_source: the paper's reference; rows whose published source differs get a footnote naming it.
        footnotes: lines the caller adds to the footer (e.g. the profile, the training budget, the hardware).
        block_titles: dataset -> (title, footnote) of a block shown under another name than its dataset (a stand-in,
            `repro.tables.stand_in.block_titles`).
    """
    if table_id not in LAYOUT:
        raise ValueError(f"no LaTeX layout for {table_id!r}; expected one of {sorted(LAYOUT)}")
    block_columns, paper_metrics = LAYOUT[table_id]
    metrics = list(paper_metrics) + [m for m in dict.fromkeys(cells["metric"]) if m not in paper_metrics]
    row_columns = ["model", "component", "variant", "dataset", "scale"]
    notes = _Footnotes()
    lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{escape(caption)}}}", rf"\label{{tab:{table_id}}}",
             r"\begin{tabular}{l" + "c" * len(metrics) + "}", r"\toprule",
             " & ".join(["Method"] + [_header(m, cells, notes) for m in metrics]) + r" \\"]
    blocks = cells.groupby(list(block_columns), sort=False) if block_columns else [((), cells)]
    marked = False
    row_marks: list[str] = []
    for _, block in blocks:
        lines.append(r"\midrule")
        if block_columns:
            title = _block_title(block, block_columns, block_titles or {}, notes)
            lines.append(rf"\multicolumn{{{len(metrics) + 1}}}{{l}}{{\textit{{{title}}}}} \\")
        ranks = rank_marks(block)
        marked = marked or bool(ranks)
        for _, row in block.groupby(row_columns, sort=False):
            first = row.iloc[0]
            label = _row_label(first, block.iloc[0].dataset)
            sources = set(row["source"]) - {"", paper_source}
            for source in sorted(sources):
                label += notes.mark(f"published values: {source}")
            row_mark = _row_mark(row)
            if row_mark is not None:
                label += ROW_MARKS[row_mark][0]
                row_marks += [row_mark] if row_mark not in row_marks else []
            by_metric = {cell.metric: cell for cell in row.itertuples()}
            entries = [_cell(by_metric[m], notes, ranks.get(by_metric[m].Index), row_mark is not None)
                       if m in by_metric else "" for m in metrics]
            lines.append(" & ".join([label] + entries) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    lines += _footer(cells, marked, footnotes, row_marks) + notes.lines() + [r"\end{table}"]
    return "\n".join(lines) + "\n"
