"""Figures of the reproduction: ``python -m repro.figures <command>`` (``repro/figures/cli.py``).

- ``grid``: a qualitative SR comparison like the paper's Fig. 10 (``repro.figures.grid``): per image, the HR image
  with a crop box, then the same HR-space crop of every model's output and of the ground truth, each captioned with
  the whole-image PSNR of the frozen protocol (the number the tables print).
- ``tradeoff``: PSNR against parameters and against inference time per image, one point per model, from the
  evaluation sidecars (``repro.figures.tradeoff``).

Each figure is a PNG drawn with matplotlib's Agg canvas (no display, no pyplot state); a CSV of the plotted numbers
is written beside it, same path with a ``.csv`` suffix.
"""
