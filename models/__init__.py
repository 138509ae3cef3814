"""DiffRWKVIR: token shifts, SEB, CAB, DSEB, CPEN, IPR diffusion, SR and inpainting networks.

Importing the package registers ``diffrwkvir``, ``diffrwkvir_s1``, ``diffrwkvir_inpaint`` and
``diffrwkvir_inpaint_s1`` in ``layers.registry``.
"""

from models import diffrwkvir  # noqa: F401  (registers)
