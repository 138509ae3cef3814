"""How an LR image is fed to a network at test time, beyond one ``model(lr)`` on the whole image.

Two procedures (``PROCEDURES``), chosen by ``python -m repro evaluate --procedure``:

- ``harness``: the network's forward on the whole image (every registered network pads internally).
- ``official``: what the authors' released test code does, per architecture family (``OFFICIAL``):

  - ``swinir``: ``main_test_swinir.py`` mirror-pads each side by up to a whole extra window before the forward;
    our forward already does that (``baselines/swinir.py:pad_like_swinir_test``), so official == harness.
  - ``hat``: ``HATModel.test`` (XPixelGroup/HAT, ``hat/models/hat_model.py``: ``pre_process``, lines 16-26, then
    ``process``) reflect-pads to a multiple of the window; our forward does that (``baselines/hat.py:
    pad_like_hat_test``), and the classical SR test options (``options/test/HAT_SRx*.yml``, ``HAT-S_SRx*.yml``)
    set no ``tile``, so official == harness.
  - ``mambair``, ``mambairv2``: ``MambaIRModel.test``, ``MambaIRv2Model.test`` and ``MambaIRv2LightModel.test``
    (csguoh/MambaIR, ``basicsr/models/mambair_model.py``, ``mambairv2_model.py``, ``mambairv2light_model.py``,
    lines 13-106, the same code in all three) cut an LR image with a side of 200 pixels or more into overlapping
    pieces and stitch the outputs: ``mambair_split_forward``.

  Other families have no official procedure recorded here; asking for one is an error.

``self_ensemble_forward`` is the x8 geometric self-ensemble of EDSR (``forward_x8``) and SwinIR: the mean of the
outputs for the eight dihedral transforms of the input, each transformed back.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

PROCEDURES = ("harness", "official")

# The official MambaIR / MambaIRv2 partition: a side of n LR pixels is cut into n // 200 + 1 pieces (so below 200
# the image runs whole), and each piece overlaps its neighbours by a tenth of the piece size.
MAMBAIR_SPLIT_THRESHOLD = 200
MAMBAIR_SHAVE_DIVISOR = 10

# family -> what the official procedure is, as the sidecar records it.
OFFICIAL = {
    "swinir": "main_test_swinir.py: mirror padding by up to a whole extra window, done in SwinIR.forward (== harness)",
    "hat": "HATModel.test: reflect padding to a multiple of the window, done in HAT.forward, no tiles (== harness)",
    "mambair": f"MambaIRModel.test: sides >= {MAMBAIR_SPLIT_THRESHOLD} px split into overlapping pieces, outputs stitched",
    "mambairv2": f"MambaIRv2Model.test: sides >= {MAMBAIR_SPLIT_THRESHOLD} px split into overlapping pieces, outputs stitched",
}

Forward = Callable[[torch.Tensor], torch.Tensor]


def mambair_split_forward(forward: Forward, lq: torch.Tensor, scale: int, *, threshold: int | None = None,
                          shave_divisor: int = MAMBAIR_SHAVE_DIVISOR) -> torch.Tensor:
    """The official MambaIR / MambaIRv2 test: split the LR image, run each piece, stitch the outputs.

    Per side of ``n`` pixels: ``k = n // threshold + 1`` pieces. The image is reflect-padded at the bottom/right to
    a multiple of ``k`` (``-n % k`` pixels), so every piece has the core size ``c = (n + pad) // k``. Piece ``i``
    reads LR rows ``[i c - s, (i + 1) c + s)`` with the overlap ``s = c // shave_divisor``, except that the first
    piece has no overlap above and the last none below. From each output the ``c * scale`` rows of its core go to
    rows ``[i c scale, (i + 1) c scale)`` of the result; columns likewise. The padding is cropped off at the end.
    An image with both sides below ``threshold`` is one piece: the plain forward.

    Args:
        forward: the network on one LR piece, [B, C, h, w] -> [B, C', h * scale, w * scale].
        lq: LR batch [B, C, H, W].
        scale: the network's upscaling factor.
        threshold: the side length from which a side is cut (default the official 200, ``MAMBAIR_SPLIT_THRESHOLD``).
        shave_divisor: the overlap is the core size divided by this (official 10).
    """
    threshold = MAMBAIR_SPLIT_THRESHOLD if threshold is None else threshold
    if threshold < 1 or shave_divisor < 1:
        raise ValueError(f"threshold and shave_divisor must be positive, got {threshold} and {shave_divisor}")
    h, w = lq.shape[-2:]
    pieces_h, pieces_w = h // threshold + 1, w // threshold + 1
    if pieces_h == 1 and pieces_w == 1:
        return forward(lq)
    pad_h, pad_w = -h % pieces_h, -w % pieces_w
    img = F.pad(lq, (0, pad_w, 0, pad_h), mode="reflect") if pad_h or pad_w else lq
    core_h, core_w = img.shape[-2] // pieces_h, img.shape[-1] // pieces_w
    shave_h, shave_w = core_h // shave_divisor, core_w // shave_divisor

    def bounds(i: int, pieces: int, core: int, shave: int) -> tuple[int, int]:
        return i * core - (shave if i > 0 else 0), (i + 1) * core + (shave if i < pieces - 1 else 0)

    out = None
    for i in range(pieces_h):
        y0, y1 = bounds(i, pieces_h, core_h, shave_h)
        for j in range(pieces_w):
            x0, x1 = bounds(j, pieces_w, core_w, shave_w)
            piece = forward(img[..., y0:y1, x0:x1])
            if out is None:
                out = piece.new_zeros(piece.shape[0], piece.shape[1], img.shape[-2] * scale, img.shape[-1] * scale)
            oy, ox = (i * core_h - y0) * scale, (j * core_w - x0) * scale
            out[..., i * core_h * scale:(i + 1) * core_h * scale, j * core_w * scale:(j + 1) * core_w * scale] = \
                piece[..., oy:oy + core_h * scale, ox:ox + core_w * scale]
    return out[..., :h * scale, :w * scale]


def official_procedure(family: str, scale: int) -> tuple[Callable[[Forward], Forward], str]:
    """The official test procedure of ``family``: a wrapper of the per-image forward, and its description.

    Raises:
        ValueError: for a family without a recorded official procedure.
    """
    if family not in OFFICIAL:
        raise ValueError(f"no official test procedure is recorded for the {family!r} family (known: "
                         f"{', '.join(sorted(OFFICIAL))}); use --procedure harness")
    if family in ("mambair", "mambairv2"):
        return (lambda fwd: (lambda lq: mambair_split_forward(fwd, lq, scale))), OFFICIAL[family]
    return (lambda fwd: fwd), OFFICIAL[family]


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """The ``k``-th (0-7) of the eight symmetries of the square on the last two dims: transpose if k >= 4, then
    rotate by ``k % 4`` quarter turns."""
    if k >= 4:
        x = x.transpose(-2, -1)
    return torch.rot90(x, k % 4, dims=(-2, -1))


def inverse_dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """Undo ``dihedral(., k)``."""
    x = torch.rot90(x, -(k % 4), dims=(-2, -1))
    return x.transpose(-2, -1) if k >= 4 else x


def self_ensemble_forward(forward: Forward, lq: torch.Tensor) -> torch.Tensor:
    """x8 self-ensemble: the mean over the eight dihedral transforms ``g`` of ``g^-1(forward(g(lq)))``."""
    total = None
    for k in range(8):
        out = inverse_dihedral(forward(dihedral(lq, k).contiguous()), k)
        total = out if total is None else total + out
    return total / 8
