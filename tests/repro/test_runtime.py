"""tune_cpu_allocator: glibc then serves large tensors from its heap, where freed memory is reused."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# counts the blocks glibc serves by mmap around one 30 MB tensor (mallinfo2: glibc 2.33 and later)
PROBE = """
import ctypes, sys, torch
sys.path.insert(0, {repo!r})
class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
if {tuned}:
    from repro.runtime import tune_cpu_allocator
    assert tune_cpu_allocator() and tune_cpu_allocator()
before = libc.mallinfo2().hblks
x = torch.ones(30 * 2**20 // 4)
print(libc.mallinfo2().hblks - before)
"""


def _mmapped_blocks(tuned: bool) -> int:
    done = subprocess.run([sys.executable, "-c", PROBE.format(repo=str(REPO), tuned=tuned)], capture_output=True,
                          text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return int(done.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_large_tensors_come_from_the_heap_once_tuned():
    assert _mmapped_blocks(tuned=False) == 1  # glibc's default: its own mapping, unmapped again when freed
    assert _mmapped_blocks(tuned=True) == 0
