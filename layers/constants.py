"""Constants that several networks share."""

# DIV2K mean of R, G, B in [0, 1]. SwinIR, HAT, MambaIR, MambaIRv2 and DiffRWKVIR subtract it before the network
# and add it back after.
RGB_MEAN = (0.4488, 0.4371, 0.4040)
