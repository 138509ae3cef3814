"""pytest-benchmark cases, kept out of the default test run (`testpaths` is tests/): timings, not checks.

    pytest benchmarks --benchmark-only --benchmark-autosave            # save this commit's timings
    pytest benchmarks --benchmark-only --benchmark-compare              # compare with the last saved run
    pytest benchmarks --benchmark-only --benchmark-compare=0001 --benchmark-compare-fail=median:10%

Shapes are the ones `python -m kernels.bench` and `python -m repro profile --compare` use, on 2 threads.
"""

import pytest
import torch


@pytest.fixture(autouse=True)
def two_threads():
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)
