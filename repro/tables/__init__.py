"""Published vs reproduced tables: the paper's numbers, reproduced results, their join, and CSV/LaTeX writers."""

from repro.tables.consistency import flag_published, rmse_contradictions, rmse_floor, sam_contradictions
from repro.tables.join import STATUSES, cell_status, join, match_band, noise_band, seed_band
from repro.tables.latex import to_latex
from repro.tables.make import make_table
from repro.tables.published import load_extra, load_published, printed_decimals, read_published
from repro.tables.results import read_eval, read_eval_files, read_profile, read_profile_files
from repro.tables.seeds import aggregate_seeds

__all__ = [
    "STATUSES", "aggregate_seeds", "cell_status", "flag_published", "join", "load_extra", "load_published", "make_table",
    "match_band", "noise_band", "printed_decimals", "read_eval", "read_eval_files", "read_profile", "read_profile_files",
    "read_published", "rmse_contradictions", "rmse_floor", "sam_contradictions", "seed_band", "to_latex",
]
