"""Published vs reproduced tables: the paper's numbers, reproduced results, their join, and CSV/LaTeX writers."""

from repro.tables.join import STATUSES, cell_status, join, match_band, noise_band
from repro.tables.latex import to_latex
from repro.tables.make import make_table
from repro.tables.published import load_extra, load_published, printed_decimals, read_published
from repro.tables.results import read_eval, read_eval_files, read_profile, read_profile_files

__all__ = [
    "STATUSES", "cell_status", "join", "load_extra", "load_published", "make_table", "match_band", "noise_band",
    "printed_decimals", "read_eval", "read_eval_files", "read_profile", "read_profile_files", "read_published",
    "to_latex",
]
