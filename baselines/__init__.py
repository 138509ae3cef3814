"""Re-implemented baselines of Tables 2-4, registered in `layers.registry` on import.

Each module keeps the official state-dict key names, so official checkpoints load with ``strict=True``.
"""

from baselines import bicubic, diffir, hat, mambair, mambairv2, srcnn, swinir, vdsr  # noqa: F401  (registers)
