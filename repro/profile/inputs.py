"""The input a profile measures at: ``--input HxW`` (LR height x width), or a preset named by its output size.

Presets (output width x height, as Table 4's text gives it; the LR input is the output divided by the scale):

- ``default``: a 1280x720 output, i.e. LR 320x180 (H x W = 180 x 320) at x4.
- ``paper``: a 640x360 output, LR 160x90 (H x W = 90 x 160) at x4; on the official DiffIR x4 the FLOP counter gives
  338.69 GFLOP at this input against the paper's 338.56 G, so Table 4 reads as measured here.

Inpainting networks have no scale: the preset's output size is their input.
"""

from __future__ import annotations

import re

# output (width, height) of each preset
PRESETS = {"default": (1280, 720), "paper": (640, 360)}


def parse_hw(text: str) -> tuple[int, int]:
    """``"90x160"`` -> (90, 160): height x width, both positive.

    Args:
        text: ``HxW`` (``x`` or ``X``).
    """
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match or min(int(match[1]), int(match[2])) < 1:
        raise ValueError(f"expected an input size HxW such as 90x160, got {text!r}")
    return int(match[1]), int(match[2])


def preset_hw(preset: str, scale: int) -> tuple[int, int]:
    """LR (height, width) of a preset at ``scale`` (1 for inpainting).

    Args:
        preset: a key of ``PRESETS``.
        scale: the SR factor; the preset's output must divide by it.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; expected one of {sorted(PRESETS)}")
    width, height = PRESETS[preset]
    if width % scale or height % scale:
        raise ValueError(f"preset {preset!r} ({width}x{height} output) is not a multiple of the scale {scale}")
    return height // scale, width // scale


def resolve_input(input_hw: str | None, preset: str | None, scale: int) -> tuple[tuple[int, int], str]:
    """The LR (height, width) to measure at and how it was chosen (``custom``, or the preset's name).

    Args:
        input_hw: ``HxW`` or None.
        preset: a preset name or None; at most one of the two may be given. Neither: ``default``.
        scale: the SR factor (1 for inpainting).
    """
    if input_hw is not None and preset is not None:
        raise ValueError("give either an input size or a preset, not both")
    if input_hw is not None:
        return parse_hw(input_hw), "custom"
    preset = preset or "default"
    return preset_hw(preset, scale), preset
