"""Published numbers that contradict each other: the RMSE floor implied by PSNR, and SAM above Bicubic's.

Oracles: the closed form of the floor (255 * 10**(-PSNR/20)), Jensen's inequality checked on explicit image sets, and
the ratios of the transcribed tables computed by hand once (Table 3: 0.3917 SRCNN/Urban100 .. 0.7493 DiffIR/Set5;
Table 5: 0.5091 .. 0.6267).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from repro.tables import load_published
from repro.tables.consistency import RMSE_FLAG, SAM_FLAG, flag_published, rmse_contradictions, rmse_floor, sam_contradictions

PUBLISHED = Path(__file__).resolve().parents[2] / "tables" / "published"


def test_rmse_floor_is_jensens_bound():
    assert rmse_floor(20 * np.log10(255 / 10)) == pytest.approx(10.0)
    assert rmse_floor(26.5038) == pytest.approx(12.06008, abs=1e-5)
    # any set of images: the mean of the per-image RMSE is at least the floor of the mean PSNR
    rng = np.random.default_rng(0)
    for _ in range(100):
        rmse = rng.uniform(1.0, 40.0, size=rng.integers(1, 20))
        psnr = 20 * np.log10(255 / rmse)
        assert rmse.mean() >= rmse_floor(psnr.mean()) - 1e-9


def test_every_published_table3_rmse_is_below_its_psnr_floor():
    table3 = load_published("table3", PUBLISHED)
    flagged = rmse_contradictions(table3)
    assert len(flagged) == 40  # every (method, dataset) row
    assert flagged["ratio"].between(0.39, 0.75).all()
    assert flagged["ratio"].min() == pytest.approx(0.39168, abs=1e-5)
    assert flagged["ratio"].max() == pytest.approx(0.74931, abs=1e-5)
    lowest = flagged.loc[flagged["ratio"].idxmin()]
    highest = flagged.loc[flagged["ratio"].idxmax()]
    assert (lowest["model"], lowest["dataset"]) == ("srcnn", "Urban100")
    assert (highest["model"], highest["dataset"]) == ("diffir", "Set5")
    ours = flagged[(flagged["model"] == "diffrwkvir") & (flagged["dataset"] == "BSD100")].iloc[0]
    assert ours["floor"] == pytest.approx(11.69, abs=0.005) and ours["rmse"] == 6.3994  # docs/protocol.md's example


def test_every_published_table5_rmse_is_below_its_psnr_floor():
    flagged = rmse_contradictions(load_published("table5", PUBLISHED))
    assert len(flagged) == 12
    assert flagged["ratio"].min() == pytest.approx(0.50905, abs=1e-5)
    assert flagged["ratio"].max() == pytest.approx(0.62672, abs=1e-5)


def test_rmse_at_or_above_the_floor_is_not_flagged():
    cells = pd.DataFrame({"model": ["a", "a", "b", "b"], "component": "", "variant": "", "dataset": "Set5",
                          "scale": "4", "metric": ["psnr", "rmse", "psnr", "rmse"],
                          "published": [30.0, rmse_floor(30.0) * 1.01, 30.0, rmse_floor(30.0) * 0.99]})
    assert rmse_contradictions(cells)["model"].tolist() == ["b"]


def test_flag_notes_and_keeps_transcription_notes():
    table3 = flag_published(load_published("table3", PUBLISHED), {("BSD100", "4"): 0.0290})
    swinir = table3[(table3["model"] == "swinir") & (table3["dataset"] == "BSD100")].set_index("metric")
    assert swinir.loc["rmse", "note"] == (
        "published RMSE 6.44 < 12.06, the least any set of images with mean PSNR 26.50 dB allows: RMSE protocol not "
        "stated, not reproducible from the paper's numbers")
    assert swinir.loc["sam", "note"] == (
        "published SAM 0.1799 > 0.0290, the SAM of Bicubic upscaling (the weakest method) reproduced on BSD100: SAM "
        "protocol not stated, these values cannot be reproduced")
    assert (swinir.loc["rmse", "published_flag"], swinir.loc["sam", "published_flag"]) == (RMSE_FLAG, SAM_FLAG)
    assert swinir.loc["psnr", "note"] == "" and swinir.loc["psnr", "published_flag"] == ""
    # SAM is only checked where Bicubic was measured: BSD100's 8 methods, no other dataset
    sam = table3[table3["published_flag"] == SAM_FLAG]
    assert len(sam) == 8 and set(sam["dataset"]) == {"BSD100"}
    assert (table3["published_flag"] == RMSE_FLAG).sum() == 40
    # Table 5's cells carry a transcription note: the flag is appended to it
    table5 = flag_published(load_published("table5", PUBLISHED))
    uni = table5[(table5["variant"] == "uni") & (table5["metric"] == "rmse")].iloc[0]
    assert uni["note"].startswith("dataset inferred (paper does not say): the (Ours) row equals Table 3's Ours row "
                                  "on BSD100; published RMSE 6.43 < 12.60,")
    assert (table5["published_flag"] == SAM_FLAG).sum() == 0  # no Bicubic SAM given


def test_sam_below_bicubic_and_bicubic_itself_are_not_flagged():
    cells = pd.DataFrame({"model": ["bicubic", "x", "y"], "component": "", "variant": "", "dataset": "Set5",
                          "scale": "4", "metric": "sam", "published": [0.2, 0.04, 0.05]})
    assert sam_contradictions(cells, {("Set5", "4"): 0.041})["model"].tolist() == ["y"]
    assert sam_contradictions(cells, {("Set14", "4"): 0.001}).empty
