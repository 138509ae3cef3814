"""Fused C++ kernels for the CPU (kernels/csrc/): backends `fused_chunk` and `fused_recurrent`.

- `fused_chunk` (delta rule): the chunked algorithm of kernels/chunk.py as one kernel. PyTorch runs that algorithm
  as many batched products whose intermediates go through memory, which on a 2-core CPU caps it near a fifth of the
  matmul rate; the kernel walks each (batch, head) sequence chunk by chunk with every intermediate in cache and only
  computes the lower triangles.
- `fused_recurrent` (delta rule and generalized rule): the token-by-token recurrence of kernels/naive.py with the
  state in registers. A CPU has no use for the chunked form's parallelism across chunks, and the recurrence needs
  fewer FLOPs (3-5 K V multiply-adds per token against about 11 K V for the chunked form at C = 64, K = V = 32).

Both are compiled on first use with the machine's C++ compiler (`$CXX`, else `c++`; about two seconds) into a
cache keyed by the sources, the compiler and the CPU (`$REPRO_KERNEL_CACHE`, else ~/.cache/repro-kernels). Without
a compiler they are unavailable, `available()` says why, and `auto` uses `chunk`. They run one OpenMP thread per
sequence (and per group of 64 value columns for the recurrence), with torch's intra-op thread count.

Gradients: the kernels are forward-only and keep no intermediates; backward recomputes the forward with the chunked
PyTorch algorithm under autograd (activation recomputation, as fla's kernels do) and differentiates that.
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

CSRC = Path(__file__).parent / "csrc"
SOURCES = [CSRC / "delta_rule_cpu.cpp", CSRC / "recurrent_cpu.cpp"]
HEADERS = [CSRC / "simd.h"]
FLAGS = ["-O3", "-march=native", "-fopenmp", "-shared", "-fPIC", "-std=c++17"]


class KernelUnavailable(RuntimeError):
    """The fused CPU kernels could not be built or loaded on this machine (the message says why)."""


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
        command = [compiler, *FLAGS, *map(str, SOURCES), "-o", str(built)]
        result = subprocess.run(command, check=False, capture_output=True, text=True)
        if result.returncode != 0:
            raise KernelUnavailable(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
        os.replace(built, target)  # atomic: concurrent first uses (parallel Snakemake jobs) each see a whole file


@functools.cache
def load_library() -> ctypes.CDLL:
    """Build (once per sources, compiler and CPU) and load the kernels; raises KernelUnavailable."""
    compiler = os.environ.get("CXX", "c++")
    if shutil.which(compiler) is None:
        raise KernelUnavailable(f"no C++ compiler {compiler!r} on PATH (set $CXX); the `chunk` backend still works")
    version = subprocess.run([compiler, "--version"], check=False, capture_output=True, text=True).stdout.split("\n")[0]
    texts = [path.read_text() for path in SOURCES + HEADERS]
    key = hashlib.sha256("\n".join([*texts, compiler, version, *FLAGS, _cpu_signature()]).encode()).hexdigest()
    target = cache_dir() / f"fused_cpu-{key[:16]}.so"
    if not target.exists():
        try:
            _compile(compiler, target)
        except OSError as error:  # e.g. a read-only home directory
            raise KernelUnavailable(f"cannot build into {target.parent} ({error}); set $REPRO_KERNEL_CACHE") from error
    try:
        lib = ctypes.CDLL(str(target))
    except OSError as error:
        raise KernelUnavailable(f"cannot load {target}: {error}") from error
    index, pointer = ctypes.POINTER(ctypes.c_int64), ctypes.c_void_p
    for name in ("delta_rule_forward_f32", "delta_rule_forward_f64"):
        fn = getattr(lib, name)
        fn.restype = ctypes.c_int
        fn.argtypes = [ctypes.c_int64] * 6 + [pointer, index] * 5 + [pointer] * 2 + [ctypes.c_double, ctypes.c_int]
    for name in ("recurrent_forward_f32", "recurrent_forward_f64"):
        fn = getattr(lib, name)
        fn.restype = ctypes.c_int
        fn.argtypes = (
            [ctypes.c_int]
            + [ctypes.c_int64] * 5
            + [pointer, index] * 8
            + [pointer] * 2
            + [
                ctypes.c_double,
                ctypes.c_int,
            ]
        )
    return lib


def available() -> tuple[bool, str]:
    """(True, "") when the kernels build and load here, else (False, the reason)."""
    try:
        load_library()
    except KernelUnavailable as error:
        return False, str(error)
    return True, ""


def _head_first(x: torch.Tensor) -> torch.Tensor:
    """The same [B, T, H, ...] tensor with each (batch, head) sequence contiguous in memory. The kernels read any
    strides, but a sequence's rows spread over the other heads' rows read 30-40% slower (measured at B=4, H=4,
    T=4096, K=V=32) than one copy costs; outputs are written head-first and copied back likewise."""
    row = x.shape[3] if x.ndim == 4 else 1
    unit_features = x.ndim == 3 or x.stride(3) == 1
    if unit_features and (x.shape[2] == 1 or x.stride(1) == row):
        return x
    return x.transpose(1, 2).contiguous().transpose(1, 2)


def _prepare(tensors, dtype):
    """Detached tensors in the compute dtype, each (batch, head) sequence contiguous."""
    return [None if x is None else _head_first(x.detach().to(dtype)) for x in tensors]


def _ptr(x: torch.Tensor | None):
    return None if x is None else x.data_ptr()


def _strides(x: torch.Tensor | None):
    """(batch, token, head) element strides of a [B, T, H, D] or [B, T, H] tensor."""
    return None if x is None else (ctypes.c_int64 * 3)(*x.stride()[:3])


def _outputs(q, v, initial_state, output_final_state, dtype):
    batch, seq_len, heads, dk = q.shape
    o = torch.empty(batch, heads, seq_len, v.shape[-1], dtype=dtype).transpose(1, 2)  # head-first, see _head_first
    h0 = None if initial_state is None else initial_state.detach().to(dtype).contiguous()
    state = torch.empty(batch, heads, dk, v.shape[-1], dtype=dtype) if output_final_state else None
    if state is not None and seq_len == 0:  # nothing evolves: the final state is the initial one
        state.copy_(h0) if h0 is not None else state.zero_()
    return o, h0, state


def _dtype(q: torch.Tensor) -> torch.dtype:
    dtype = compute_dtype(q.dtype)
    if q.device.type != "cpu":
        raise ValueError(f"the fused CPU kernels take CPU tensors, got device {q.device}")
    return dtype


def _chunk_forward(q, k, v, beta, initial_state, *, scale, output_final_state, chunk_size):
    dtype = _dtype(q)
    q, k, v, beta = _prepare([q, k, v, beta], dtype)
    o, h0, state = _outputs(q, v, initial_state, output_final_state, dtype)
    batch, seq_len, heads, dk = q.shape
    if seq_len:
        lib = load_library()
        fn = lib.delta_rule_forward_f32 if dtype == torch.float32 else lib.delta_rule_forward_f64
        chunk = max(1, min(chunk_size, seq_len))
        args = [_ptr(q), _strides(q), _ptr(k), _strides(k), _ptr(v), _strides(v), _ptr(beta), _strides(beta)]
        fn(batch, seq_len, heads, dk, v.shape[-1], chunk, *args, _ptr(o), _strides(o), _ptr(h0), _ptr(state), scale,
           torch.get_num_threads())  # fmt: skip
    return o.contiguous(), state


def _recurrent_forward(q, k, v, a, b, gk, beta, initial_state, *, scale, output_final_state, chunk_size):
    del chunk_size  # a setting of the chunked backward only
    dtype = _dtype(q)
    w = None if gk is None else gk.detach().to(dtype).exp()  # the decay factors, vectorised by torch
    q, k, v, a, b, w, beta = _prepare([q, k, v, a, b, w, beta], dtype)
    o, h0, state = _outputs(q, v, initial_state, output_final_state, dtype)
    batch, seq_len, heads, dk = q.shape
    if seq_len:
        lib = load_library()
        fn = lib.recurrent_forward_f32 if dtype == torch.float32 else lib.recurrent_forward_f64
        args = [item for x in (q, k, v, a, b, w, beta) for item in (_ptr(x), _strides(x))]
        fn(int(beta is not None), batch, seq_len, heads, dk, v.shape[-1], *args, _ptr(o), _strides(o), _ptr(h0),
           _ptr(state), scale, torch.get_num_threads())  # fmt: skip
    return o.contiguous(), state


class _RecomputedBackward(torch.autograd.Function):
    """A forward-only kernel's (o, final_state); backward differentiates `reference` recomputed on the inputs."""

    @staticmethod
    def forward(ctx, kernel, reference, settings, initial_state, *inputs):
        ctx.save_for_backward(initial_state, *inputs)
        ctx.reference, ctx.settings = reference, settings
        return kernel(*inputs, initial_state, **settings)

    @staticmethod
    def backward(ctx, grad_o, grad_state):
        leaves = [
            None if x is None else x.detach().requires_grad_(needed)
            for x, needed in zip(ctx.saved_tensors, ctx.needs_input_grad[3:], strict=True)
        ]
        with torch.enable_grad():
            o, state = ctx.reference(*leaves[1:], initial_state=leaves[0], **ctx.settings)
        outputs, grads = [o], [grad_o]
        if state is not None and grad_state is not None:
            outputs.append(state)
            grads.append(grad_state)
        wanted = [x for x in leaves if x is not None and x.requires_grad]
        found = iter(torch.autograd.grad(outputs, wanted, grads, allow_unused=True) if wanted else ())
        return (None, None, None, *[next(found) if x is not None and x.requires_grad else None for x in leaves])


def fused_chunk_delta_rule(q, k, v, beta, *, scale, initial_state=None, output_final_state=False, chunk_size=64):
    """Plain delta rule, chunkwise, by the fused kernel; inputs [B, T, H, *], state [B, H, K, V]."""
    from kernels.chunk import chunk_delta_rule

    settings = {"scale": scale, "output_final_state": output_final_state, "chunk_size": chunk_size}
    return _RecomputedBackward.apply(_chunk_forward, chunk_delta_rule, settings, initial_state, q, k, v, beta)


def fused_recurrent_delta_rule(q, k, v, beta, *, scale, initial_state=None, output_final_state=False, chunk_size=64):
    """Plain delta rule, token by token, by the fused kernel (chunk_size sets the chunked backward only)."""
    from kernels.chunk import chunk_delta_rule

    def kernel(q, k, v, beta, h0, **settings):
        return _recurrent_forward(q, k, v, None, None, None, beta, h0, **settings)

    settings = {"scale": scale, "output_final_state": output_final_state, "chunk_size": chunk_size}
    return _RecomputedBackward.apply(kernel, chunk_delta_rule, settings, initial_state, q, k, v, beta)


def fused_recurrent_state_evolution(q, k, v, a, b, gk, *, scale, initial_state=None, output_final_state=False, chunk_size=64):
    """Generalized rule, token by token, by the fused kernel (chunk_size sets the chunked backward only)."""
    from kernels.chunk import chunk_state_evolution

    def kernel(q, k, v, a, b, gk, h0, **settings):
        return _recurrent_forward(q, k, v, a, b, gk, None, h0, **settings)

    settings = {"scale": scale, "output_final_state": output_final_state, "chunk_size": chunk_size}
    return _RecomputedBackward.apply(kernel, chunk_state_evolution, settings, initial_state, q, k, v, a, b, gk)


def fused_chunk_flops(*, batch: int, heads: int, seq_len: int, dk: int, dv: int, chunk_size: int = 64, lanes: int = 16):
    """FLOPs the `fused_chunk` kernel executes (a multiply-add counts 2), loop by loop as in csrc/delta_rule_cpu.cpp:
    it skips the zero upper triangles of `K K^T`, `Q K^T` and of the solve at the granularity of its 4-row blocks and
    `lanes`-wide vectors (16 fp32 lanes in 64 bytes), so it does less than `kernels.chunk.delta_rule_flops` counts."""
    kp, vp = -(-dk // lanes) * lanes, -(-dv // lanes) * lanes
    total = 0
    for t0 in range(0, seq_len, chunk_size):
        c4 = -(-min(chunk_size, seq_len - t0) // 4) * 4
        for i0 in range(0, c4, 4):
            cols = min(-(-chunk_size // lanes), -(-(i0 + 4) // lanes)) * lanes
            total += 2 * 4 * cols * dk  # rows of A = diag(beta) K K^T and of P = Q K^T
            total += 4 * i0 * (kp + vp) + 6 * (kp + vp)  # solve: the rows above, then the block's own triangle
            total += 4 * dk * vp + 4 * dk * vp + 4 * (i0 + 4) * vp  # U - W S, then Q S and P U
        total += kp * c4 * vp  # S + K^T U
    return 2 * batch * heads * total
