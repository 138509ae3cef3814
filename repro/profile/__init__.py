"""Hardware profiling: parameter counts, CPU/GPU forward time (more in the profiling stage: FLOPs, NVML, ncu)."""
