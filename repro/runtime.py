"""Process-wide settings for CPU runs. The entry points `python -m repro` and `python -m repro.profile.forward`
apply them; importing the library never does (call `tune_cpu_allocator()` in scripts of your own)."""

import ctypes
import ctypes.util
import functools
import sys

# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
MIB = 1 << 20


@functools.cache
def tune_cpu_allocator() -> bool:
    """Let glibc keep freed blocks of up to 32 MiB for reuse instead of handing each back to the kernel.

    PyTorch's CPU allocator takes every tensor from malloc. glibc serves large blocks with a fresh mmap and unmaps
    them when freed, so a network that allocates and frees many 1-30 MB activations per layer page-faults and zeroes
    all that memory again at every layer (how often depends on glibc's adaptive threshold, so timings also jump
    between runs). Measured on the 2-core CPU, forward of a 64x64 input at x4 (`python -m repro.profile.forward`,
    runs without and with): DiffRWKVIR 1.9-2.3 s -> 1.0-1.1 s; one of its SEB layers 70-93 ms -> 31 ms; DiffIR
    1.02-1.09 s either way. The cost: the process keeps its peak heap. Returns False where the C library is not glibc.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # 32 MiB is glibc's largest mmap threshold on 64-bit; mallopt returns 1 on success
    settings = ((M_MMAP_THRESHOLD, 32 * MIB), (M_TRIM_THRESHOLD, 1024 * MIB), (M_TOP_PAD, 64 * MIB))
    return all(mallopt(param, value) == 1 for param, value in settings)
