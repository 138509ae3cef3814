"""The `cpu` backend: the chunkwise delta rule as one fused C++ kernel (kernels/csrc/delta_rule_cpu.cpp).

PyTorch runs the chunked algorithm of kernels/chunk.py as many batched products whose intermediates go through
memory; on a 2-core CPU that caps it near a fifth of the matmul rate. The fused kernel walks each (batch, head)
sequence chunk by chunk with every intermediate in cache (one OpenMP thread per sequence), and only computes the
lower triangles. It is compiled on first use with the machine's C++ compiler (`$CXX`, else `c++`; about a second)
into a cache keyed by the source, the compiler and the CPU (`$REPRO_KERNEL_CACHE`, else ~/.cache/repro-kernels).
Without a compiler the backend is unavailable, `available()` says why, and `auto` uses `chunk`.

Gradients: the kernel is forward-only and keeps no intermediates; backward recomputes the forward with
`chunk_delta_rule` under autograd (activation recomputation, as fla's kernels do) and differentiates that.
"""

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

from kernels.naive import compute_dtype

SOURCE = Path(__file__).parent / "csrc" / "delta_rule_cpu.cpp"
FLAGS = ["-O3", "-march=native", "-fopenmp", "-shared", "-fPIC", "-std=c++17"]


class KernelUnavailable(RuntimeError):
    """The fused CPU kernel could not be built or loaded on this machine (the message says why)."""


def cache_dir() -> Path:
    if os.environ.get("REPRO_KERNEL_CACHE"):
        return Path(os.environ["REPRO_KERNEL_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "repro-kernels"


def _cpu_signature() -> str:
    """What -march=native compiles for: the CPU flags (a shared home directory may serve several kinds of node)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.machine() + platform.processor()


def _compile(compiler: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        built = Path(tmp) / target.name
        command = [compiler, *FLAGS, str(SOURCE), "-o", str(built)]
        result = subprocess.run(command, check=False, capture_output=True, text=True)
        if result.returncode != 0:
            raise KernelUnavailable(f"{compiler} failed to build {SOURCE.name}:\n{result.stderr[-2000:]}")
        os.replace(built, target)  # atomic: concurrent first uses (parallel Snakemake jobs) each see a whole file


@functools.cache
def load_library() -> ctypes.CDLL:
    """Build (once per source, compiler and CPU) and load the kernel library; raises KernelUnavailable."""
    compiler = os.environ.get("CXX", "c++")
    if shutil.which(compiler) is None:
        raise KernelUnavailable(f"no C++ compiler {compiler!r} on PATH (set $CXX); the `chunk` backend still works")
    version = subprocess.run([compiler, "--version"], check=False, capture_output=True, text=True).stdout.split("\n")[0]
    key = hashlib.sha256("\n".join([SOURCE.read_text(), compiler, version, *FLAGS, _cpu_signature()]).encode())
    target = cache_dir() / f"delta_rule_cpu-{key.hexdigest()[:16]}.so"
    if not target.exists():
        _compile(compiler, target)
    try:
        lib = ctypes.CDLL(str(target))
    except OSError as error:
        raise KernelUnavailable(f"cannot load {target}: {error}") from error
    index = ctypes.POINTER(ctypes.c_int64)
    for name in ("delta_rule_forward_f32", "delta_rule_forward_f64"):
        fn = getattr(lib, name)
        fn.restype = ctypes.c_int
        fn.argtypes = (
            [ctypes.c_int64] * 6
            + [ctypes.c_void_p, index] * 5
            + [ctypes.c_void_p] * 2
            + [
                ctypes.c_double,
                ctypes.c_int,
            ]
        )
    return lib


def available() -> tuple[bool, str]:
    """(True, "") when the kernel builds and loads here, else (False, the reason)."""
    try:
        load_library()
    except KernelUnavailable as error:
        return False, str(error)
    return True, ""


def _strides(x: torch.Tensor) -> ctypes.Array:
    """(batch, token, head) element strides of a [B, T, H, D] (or [B, T, H]) tensor."""
    return (ctypes.c_int64 * 3)(*x.stride()[:3])


def _forward(q, k, v, beta, *, scale, initial_state, output_final_state, chunk_size):
    dtype = compute_dtype(q.dtype)
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"the cpu backend computes in fp32 or fp64, got {q.dtype}")
    # the kernel reads any (batch, token, head) strides but needs unit stride along the feature dimension
    q, k, v = (x.detach().to(dtype) for x in (q, k, v))
    q, k, v = (x if x.stride(-1) == 1 else x.contiguous() for x in (q, k, v))
    beta = beta.detach().to(dtype)
    batch, seq_len, heads, dk = q.shape
    dv = v.shape[-1]
    o = torch.empty(batch, seq_len, heads, dv, dtype=dtype)
    h0 = None if initial_state is None else initial_state.detach().to(dtype).contiguous()
    state = torch.empty(batch, heads, dk, dv, dtype=dtype) if output_final_state else None
    if seq_len == 0:  # nothing evolves: the final state is the initial one
        if state is not None:
            state.copy_(h0) if h0 is not None else state.zero_()
        return o, state
    fn = load_library().delta_rule_forward_f32 if dtype == torch.float32 else load_library().delta_rule_forward_f64
    pointer = lambda x: None if x is None else x.data_ptr()
    fn(
        batch, seq_len, heads, dk, dv, max(1, min(chunk_size, seq_len)),
        q.data_ptr(), _strides(q), k.data_ptr(), _strides(k), v.data_ptr(), _strides(v),
        beta.data_ptr(), _strides(beta), o.data_ptr(), _strides(o),
        pointer(h0), pointer(state), scale, torch.get_num_threads(),
    )  # fmt: skip
    return o, state


class _FusedDeltaRule(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, beta, initial_state, scale, chunk_size, output_final_state):
        ctx.save_for_backward(q, k, v, beta, initial_state)
        ctx.settings = {"scale": scale, "chunk_size": chunk_size, "output_final_state": output_final_state}
        return _forward(q, k, v, beta, initial_state=initial_state, **ctx.settings)

    @staticmethod
    def backward(ctx, grad_o, grad_state):
        from kernels.chunk import chunk_delta_rule

        inputs = [
            None if x is None else x.detach().requires_grad_(needed)
            for x, needed in zip(ctx.saved_tensors, ctx.needs_input_grad[:5], strict=True)
        ]
        with torch.enable_grad():
            o, state = chunk_delta_rule(*inputs[:4], initial_state=inputs[4], **ctx.settings)
        outputs, grads = [o], [grad_o]
        if state is not None and grad_state is not None:
            outputs.append(state)
            grads.append(grad_state)
        wanted = [x for x in inputs if x is not None and x.requires_grad]
        found = iter(torch.autograd.grad(outputs, wanted, grads, allow_unused=True)) if wanted else iter(())
        input_grads = [next(found) if x is not None and x.requires_grad else None for x in inputs]
        return (*input_grads, None, None, None)


def cpu_delta_rule(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    beta: torch.Tensor,
    *,
    scale: float,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
    chunk_size: int = 64,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Plain delta rule by the fused kernel; inputs [B, T, H, *] on the CPU, state [B, H, K, V]."""
    tensors = [q, k, v, beta] + ([] if initial_state is None else [initial_state])
    if any(x.device.type != "cpu" for x in tensors):
        raise ValueError("backend 'cpu' runs on CPU tensors; use 'fla' or 'auto' on CUDA")
    return _FusedDeltaRule.apply(q, k, v, beta, initial_state, scale, chunk_size, output_final_state)
