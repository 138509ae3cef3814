"""Results on one dataset shown in the block of another: a stand-in for a set of the paper that cannot be had.

``dataset_as`` maps a dataset of the results onto a dataset (block) of the paper, e.g. ``{"FFHQ": "Mural"}`` for
Table 2, whose Mural set is not public (``python -m repro table --dataset-as FFHQ Mural``). The reproduced cells of
the stand-in are joined with the paper's numbers of that block and compared as any other, and are labelled as what
they are wherever the table shows them:

- the CSV: the block's ``note`` says which set the reproduced values were measured on and which the published ones;
- the LaTeX: the block's title is the stand-in, e.g. "FFHQ (stand-in for Mural, which is not public)", with a
  footnote saying the same as the note.

A mapping whose target is not a dataset of the paper, or whose target also has results of its own, is an error: the
two would be the same cells twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd

# why a set of the paper needs a stand-in; appended to the label (docs/data_flow.md: Mural is not registered)
WHY = {"Mural": "which is not public"}


def stand_in_label(results_dataset: str, paper_dataset: str) -> str:
    """E.g. "FFHQ (stand-in for Mural, which is not public)"."""
    why = WHY.get(paper_dataset)
    return f"{results_dataset} (stand-in for {paper_dataset}{', ' + why if why else ''})"


def block_note(results_dataset: str, paper_dataset: str) -> str:
    """The note of every cell of a stand-in block (CSV) and the footnote on its title (LaTeX)."""
    return (f"{stand_in_label(results_dataset, paper_dataset)}: reproduced values measured on {results_dataset}, "
            f"published values are the paper's {paper_dataset} numbers")


def _checked(dataset_as: Mapping[str, str] | None, paper_datasets: Iterable[str]) -> dict[str, str]:
    dataset_as = dict(dataset_as or {})
    paper = set(paper_datasets)
    unknown = sorted(target for target in dataset_as.values() if target not in paper)
    if unknown:
        raise ValueError(f"--dataset-as maps onto {unknown}, not a dataset of this table; its datasets: {sorted(paper)}")
    targets = list(dataset_as.values())
    twice = sorted({t for t in targets if targets.count(t) > 1})
    if twice:
        raise ValueError(f"--dataset-as maps several datasets onto {twice}")
    return dataset_as


def map_datasets(reproduced: pd.DataFrame, dataset_as: Mapping[str, str] | None,
                 paper_datasets: Iterable[str]) -> pd.DataFrame:
    """``reproduced`` (long rows with a ``dataset`` column) with each stand-in renamed to the paper's dataset."""
    dataset_as = _checked(dataset_as, paper_datasets)
    if not dataset_as or reproduced.empty:
        return reproduced
    present = set(reproduced["dataset"])
    clash = sorted(t for s, t in dataset_as.items() if t in present and s in present)
    if clash:
        files = reproduced.loc[reproduced["dataset"].isin(clash), "result_file"].drop_duplicates().tolist()
        raise ValueError(f"results on {clash} itself and on a stand-in for it (--dataset-as): {files}")
    return reproduced.assign(dataset=reproduced["dataset"].map(lambda d: dataset_as.get(d, d)))


def mark_stand_ins(cells: pd.DataFrame, dataset_as: Mapping[str, str] | None) -> pd.DataFrame:
    """Joined cells with the ``note`` of every cell of a stand-in block saying so (kept after any note it had)."""
    if not dataset_as:
        return cells
    cells = cells.copy()
    for results_dataset, paper_dataset in dataset_as.items():
        block = cells["dataset"] == paper_dataset
        note = block_note(results_dataset, paper_dataset)
        cells.loc[block, "note"] = [f"{n}; {note}" if n else note for n in cells.loc[block, "note"].fillna("")]
    return cells


def block_titles(dataset_as: Mapping[str, str] | None) -> dict[str, tuple[str, str]]:
    """Paper dataset -> (LaTeX block title, footnote on it) for each stand-in."""
    return {paper: (stand_in_label(results, paper), block_note(results, paper))
            for results, paper in (dataset_as or {}).items()}
