"""The side-by-side forward profiler: counts parameters exactly and times every model it is given."""

from repro.profile.forward import main, profile_forward


def test_rows_have_exact_parameter_counts_and_positive_times():
    rows = profile_forward(["bicubic", "srcnn"], scale=2, size=16, repeats=2)
    assert [r["model"] for r in rows] == ["bicubic", "srcnn"]
    assert rows[0]["params"] == 0 and rows[1]["params"] == 8_129  # SRCNN 9-1-5: 8,032 weights + 97 biases
    assert all(0 < r["min_s"] <= r["median_s"] for r in rows)


def test_stage1_models_are_timed_with_a_ground_truth():
    rows = profile_forward(["diffir_s1"], scale=4, size=8, repeats=1)
    assert rows[0]["params"] == 24_801_478  # DiffIR stage 1, official x4 count


def test_cli_prints_a_table(capsys):
    main(["--models", "bicubic", "--size", "16", "--repeats", "1"])
    out = capsys.readouterr().out
    assert "bicubic" in out and "params" in out
