"""DiffRWKVIR: token shifts, SEB, CAB, DSEB, CPEN, IPR diffusion, SR and inpainting networks (issue 4).

Importing the package registers ``diffrwkvir``, ``diffrwkvir_s1``, ``diffrwkvir_inpaint`` and
``diffrwkvir_inpaint_s1`` in ``repro.registry``.
"""

from models import diffrwkvir  # noqa: F401  (registers)
