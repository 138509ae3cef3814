"""Hardware profiling (Table 4): ``python -m repro profile`` (``cli.py``).

One concern per module: ``inputs`` (the input size and presets), ``workload`` (the model, its inference and training
step), ``params`` (parameter counts per part), ``flops`` (FlopCounterMode with the kernel formulas of
``kernels/flops.py``), ``timing`` (interleaved timing and its statistics), ``memory`` (peak memory; CPU in fresh
subprocesses), ``nvml`` (GPU sampling), ``ncu`` (Nsight Compute's L2 hit rate and DRAM reads), ``environment``
(device, precision, versions), ``report`` (one model's profile), ``schema`` (its required keys), ``compare`` (two
models side by side), ``summary`` (readable lines); ``forward`` is the older side-by-side forward timer of every SR
model. Nothing here is imported with the package, so building the CLI's parser stays cheap.
"""
