"""DiffRWKVIR: token shifts, SEB, CAB, DSEB, CPEN, IPR diffusion, SR and inpainting networks (issue 4)."""
