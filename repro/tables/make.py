"""Tables 2-5: published numbers joined with reproduced ones, written as tidy CSV and booktabs LaTeX."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from repro.tables.consistency import bicubic_sam, flag_published
from repro.tables.join import Tolerances, join
from repro.tables.latex import to_latex
from repro.tables.official import OfficialFiles, add_official_rows, official_models, official_pairs
from repro.tables.published import load_extra, load_published
from repro.tables.results import Files, read_eval_files, read_profile_files
from repro.tables.stand_in import block_titles, map_datasets, mark_stand_ins
from repro.tables.table2 import finish as finish_table2
from repro.tables.table2 import row_models
from repro.tables.table4 import kernel_notes, mark_not_compared

# the SR tables, whose published RMSE and SAM are checked against PSNR and Bicubic (repro.tables.consistency)
SR_TABLES = ("table3", "table5")

CAPTIONS = {
    "table2": "Inpainting on Places365, CelebA-HQ and Mural",
    "table3": "Super-resolution on BSD100, Set14, Set5, Manga109 and Urban100",
    "table4": "Efficiency and memory characteristics",
    "table5": "Impact of the components of DiffRWKVIR (ablation)",
}

Extra = str | Path | pd.DataFrame


def _extra_rows(extra: Extra | Sequence[Extra] | None, published: pd.DataFrame, table_id: str) -> pd.DataFrame:
    """Extra published rows restricted to the (dataset, scale) blocks the table has, e.g. Bicubic x4 for Table 3."""
    if extra is None:
        return published.iloc[:0]
    sources = [extra] if isinstance(extra, (str, Path, pd.DataFrame)) else list(extra)
    rows = pd.concat([load_extra(e) for e in sources], ignore_index=True)
    blocks = set(zip(published["dataset"], published["scale"]))
    rows = rows[[b in blocks for b in zip(rows["dataset"], rows["scale"])]]
    return rows.assign(table_id=table_id)


def make_table(
    table_id: str,
    *,
    eval_files: Files = (),
    profile_files: Files = (),
    published_dir: str | Path,
    tolerances: Tolerances,
    out_csv: str | Path,
    out_tex: str | Path,
    extra_published: Extra | Sequence[Extra] | None = None,
    official_files: OfficialFiles = (),
    absent_datasets: Mapping[str, str] | None = None,
    footnotes: Sequence[str] = (),
    bicubic_eval: Files = (),
    dataset_as: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Join one table and write `out_csv` (one row per cell) and `out_tex`; returns the joined cells.

    Args:
        table_id: "table2" ... "table5".
        eval_files: evaluation CSVs (Tables 2, 3, 5): a list of CSVs or (row name, CSV) pairs, or a mapping row name
            -> CSV (see `repro.tables.results`); files of one cell that differ in their seed are averaged.
        profile_files: profile JSONs (Table 4), a list or a mapping model -> JSON.
        published_dir: the folder holding the transcribed `tableN.csv` files.
        tolerances: per-metric bands from the config, e.g. {"psnr": {"abs": 0.06}, "default": {"rel": 0.05}}.
        out_csv: tidy CSV to write.
        out_tex: LaTeX table to write.
        extra_published: rows the paper does not have (e.g. `bicubic_literature.csv`), shown first in each block with
            their source in a footnote. Default: None.
        official_files: evaluation CSVs of baselines run with their authors' checkpoints, per model (a mapping model
            -> CSV or CSVs, or (model, CSV) pairs): rows `<model>_official`, compared with `<model>`'s published
            numbers (`repro.tables.official`).
        absent_datasets: dataset -> why it has no results (e.g. not in the data mirror); the reason of its missing
            cells. Default: "no result file".
        footnotes: lines for the LaTeX footer (profile, training budget, hardware).
        bicubic_eval: Bicubic evaluation CSVs read only as the SAM reference of the consistency check, for a table
            without a Bicubic row (Table 5).
        dataset_as: dataset of the results -> dataset (block) of the paper it stands in for, e.g. {"FFHQ": "Mural"}
            for Table 2 (Mural is not public); labelled in the notes and the LaTeX (`repro.tables.stand_in`).
    """
    paper = load_published(table_id, published_dir)
    paper_source = paper["source"].iloc[0]
    official = official_pairs(official_files)
    paper = add_official_rows(paper, official_models(official_files), table_id)
    published = pd.concat([_extra_rows(extra_published, paper, table_id), paper], ignore_index=True)
    # Blocks in the paper's order; inside a block, extra rows (e.g. Bicubic) first, as SR tables print them.
    block_rank = {block: rank for rank, block in enumerate(dict.fromkeys(zip(paper["dataset"], paper["scale"])))}
    blocks = zip(published["dataset"], published["scale"])
    published["order"] = [block_rank[block] * len(published) + i for i, block in enumerate(blocks)]
    frames = [read_eval_files(eval_files), read_eval_files(official), read_profile_files(profile_files)]
    reproduced = pd.concat([f for f in frames if not f.empty] or frames[:1], ignore_index=True)
    reproduced = map_datasets(reproduced, dataset_as, paper["dataset"])
    if table_id == "table2":  # the harness's diffrwkvir_inpaint is the paper's diffrwkvir row
        reproduced = row_models(reproduced, paper["model"])
    cells = join(published, reproduced, tolerances, absent_datasets).assign(table_id=table_id)
    cells = mark_stand_ins(cells, dataset_as)
    if table_id == "table2":  # published-only rows, FID image counts
        cells = finish_table2(cells)
    if table_id == "table4":  # a cell measured on another device or input is not compared with the paper's
        cells, kernel_lines = kernel_notes(mark_not_compared(cells))
        footnotes = [*footnotes, *kernel_lines]
    if table_id in SR_TABLES:
        cells = flag_published(cells, bicubic_sam(read_eval_files(bicubic_eval)))
    out_csv, out_tex = Path(out_csv), Path(out_tex)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    out_tex.parent.mkdir(parents=True, exist_ok=True)
    # decimals and order lay the LaTeX out; a cell's LaTeX footnote (Table 2's FID counts) is in its note too
    cells.drop(columns=["decimals", "order", "footnote"], errors="ignore").to_csv(out_csv, index=False)
    caption = CAPTIONS[table_id] + "".join(f" ({results} as a stand-in for {paper})"
                                           for results, paper in (dataset_as or {}).items())
    out_tex.write_text(to_latex(cells, table_id, caption, paper_source=paper_source, footnotes=footnotes,
                                block_titles=block_titles(dataset_as)))
    return cells
