"""Fused C++ kernels for the CPU (kernels/csrc/): backends `fused_chunk` and `fused_recurrent`.

- `fused_chunk` (delta rule): the chunked algorithm of kernels/chunk.py as one kernel. PyTorch runs that algorithm
  as many batched products whose intermediates go through memory, which on a 2-core CPU caps it near a fifth of the
  matmul rate; the kernel walks each (batch, head) sequence chunk by chunk with every intermediate in cache and only
  computes the lower triangles.
- `fused_recurrent` (delta rule and generalized rule): the token-by-token recurrence of kernels/naive.py with the
  state in cache. A CPU has no use for the chunked form's parallelism across chunks, and the recurrence needs
  fewer FLOPs (3-5 K V multiply-adds per token against about 11 K V for the chunked form at C = 64, K = V = 32).

They are compiled on first use with the machine's C++ compiler (`$CXX`, else c++, g++ or clang++, and `$CXXFLAGS`; a few
seconds) into a cache keyed by the sources, the compiler, the flags and the CPU (`$REPRO_KERNEL_CACHE`, else
~/.cache/repro-kernels). Without a compiler they are unavailable, `available()` says why, and `auto` uses `chunk`.
They run one OpenMP thread per sequence (and per group of 64 value columns for the forward recurrence), with torch's
intra-op thread count.

The same library holds the selective scan's kernels (csrc/selective_scan_cpu.cpp, backend `fused` of
`kernels.selective_scan`; its autograd function is in kernels/selective_scan_fused.py).

Gradients: the forward kernels keep nothing; one backward kernel (recurrent_backward_cpu.cpp) sweeps the generalized
recurrence in reverse, recomputing the states from checkpoints every `chunk_size` tokens. The delta rule is its case
`a = k`, `b = -beta k`, key `beta k`, `w = 1`, and autograd maps those gradients back to k and beta.
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
SOURCES = [CSRC / "delta_rule_cpu.cpp", CSRC / "recurrent_cpu.cpp", CSRC / "recurrent_backward_cpu.cpp",
           CSRC / "selective_scan_cpu.cpp"]
HEADERS = [CSRC / "simd.h", CSRC / "vector_math.h"]
FLAGS = ["-O3", "-shared", "-fPIC", "-std=c++17"]
# tried in turn: a compiler without OpenMP (Apple's clang) builds single-threaded kernels (the pragmas are ignored),
# one that cannot target the host CPU builds generic vector code
OPTIONAL_FLAGS = [["-march=native", "-fopenmp"], ["-march=native"], []]


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


def _compile(compiler: str, flags: list[str], target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        built = Path(tmp) / target.name
        for optional in OPTIONAL_FLAGS:
            command = [compiler, *FLAGS, *optional, *flags, *map(str, SOURCES), "-o", str(built)]
            result = subprocess.run(command, check=False, capture_output=True, text=True)
            if result.returncode == 0:
                os.replace(built, target)  # atomic: concurrent first uses (parallel Snakemake jobs) see a whole file
                return
        raise KernelUnavailable(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")


@functools.cache
def load_library() -> ctypes.CDLL:
    """Build (once per sources, compiler and CPU) and load the kernels; raises KernelUnavailable."""
    candidates = [os.environ["CXX"]] if os.environ.get("CXX") else ["c++", "g++", "clang++"]
    compiler = next((name for name in candidates if shutil.which(name)), None)
    if compiler is None:
        raise KernelUnavailable(f"no C++ compiler {' or '.join(candidates)} on PATH (set $CXX); `chunk` still works")
    version = subprocess.run([compiler, "--version"], check=False, capture_output=True, text=True).stdout.split("\n")[0]
    flags = os.environ.get("CXXFLAGS", "").split()  # the user's, after ours
    texts = [path.read_text() for path in SOURCES + HEADERS]
    options = [*FLAGS, *(" ".join(optional) for optional in OPTIONAL_FLAGS), *flags]
    key = hashlib.sha256("\n".join([*texts, compiler, version, *options, _cpu_signature()]).encode()).hexdigest()
    target = cache_dir() / f"fused_cpu-{key[:16]}.so"
    if not target.exists():
        try:
            _compile(compiler, flags, target)
        except OSError as error:  # e.g. a read-only home directory
            raise KernelUnavailable(f"cannot build into {target.parent} ({error}); set $REPRO_KERNEL_CACHE") from error
    try:
        lib = ctypes.CDLL(str(target))
    except OSError as error:
        raise KernelUnavailable(f"cannot load {target}: {error}") from error
    index, pointer, size = ctypes.POINTER(ctypes.c_int64), ctypes.c_void_p, ctypes.c_int64
    scale_threads = [ctypes.c_double, ctypes.c_int]
    signatures = {  # the extern "C" entry points of csrc/, each in _f32 and _f64
        "delta_rule_forward": [size] * 6 + [pointer, index] * 5 + [pointer] * 2 + scale_threads,
        "recurrent_forward": [ctypes.c_int] + [size] * 5 + [pointer, index] * 8 + [pointer] * 2 + scale_threads,
        "recurrent_backward": [size] * 6 + [pointer, index] * 2 + [pointer] * 3 + scale_threads,
        # the selective scan's (kernels/selective_scan_fused.py): sizes, input pointers, softplus flag, ..., threads
        "selective_scan_forward": [index, pointer, ctypes.c_int, pointer, pointer, ctypes.c_int],
        "selective_scan_backward": [index, pointer, ctypes.c_int, pointer, pointer, pointer, ctypes.c_int],
    }
    for name, argtypes in signatures.items():
        for suffix in ("_f32", "_f64"):
            fn = getattr(lib, name + suffix)
            fn.restype, fn.argtypes = ctypes.c_int, argtypes
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
    strides, but a sequence's rows spread over the other heads' rows read 10-40% slower (measured at B=4, H=4,
    T=4096, K=V=32), which costs more than one copy; outputs are written head-first and copied back likewise."""
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


def _entry(name: str, dtype: torch.dtype):
    """The kernel entry point `name` for fp32 or fp64 (csrc/ exports each as name_f32 and name_f64)."""
    return getattr(load_library(), f"{name}_{'f32' if dtype == torch.float32 else 'f64'}")


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
        fn = _entry("delta_rule_forward", dtype)
        chunk = max(1, min(chunk_size, seq_len))
        args = [_ptr(q), _strides(q), _ptr(k), _strides(k), _ptr(v), _strides(v), _ptr(beta), _strides(beta)]
        fn(batch, seq_len, heads, dk, v.shape[-1], chunk, *args, _ptr(o), _strides(o), _ptr(h0), _ptr(state), scale,
           torch.get_num_threads())  # fmt: skip
    return o.contiguous(), state


def _recurrent_forward(q, k, v, a, b, gk, beta, initial_state, *, scale, output_final_state, chunk_size):
    del chunk_size  # the backward's checkpoint interval
    dtype = _dtype(q)
    w = None if gk is None else gk.detach().to(dtype).exp()  # the decay factors, vectorised by torch
    q, k, v, a, b, w, beta = _prepare([q, k, v, a, b, w, beta], dtype)
    o, h0, state = _outputs(q, v, initial_state, output_final_state, dtype)
    batch, seq_len, heads, dk = q.shape
    if seq_len:
        fn = _entry("recurrent_forward", dtype)
        args = [item for x in (q, k, v, a, b, w, beta) for item in (_ptr(x), _strides(x))]
        fn(int(beta is not None), batch, seq_len, heads, dk, v.shape[-1], *args, _ptr(o), _strides(o), _ptr(h0),
           _ptr(state), scale, torch.get_num_threads())  # fmt: skip
    return o.contiguous(), state


def _recurrent_backward(q, k, v, a, b, w, grad_o, initial_state, grad_state, *, scale, chunk_size, need_h0):
    """Gradients (dq, dk, dv, da, db, dw, dh0) of the generalized recurrence by csrc/recurrent_backward_cpu.cpp; `w`
    is the decay exp(gk). dh0 is None unless `need_h0`."""
    dtype = _dtype(q)
    inputs = _prepare([q, k, v, a, b, w, grad_o], dtype)
    batch, seq_len, heads, dk = q.shape
    dv = v.shape[-1]

    def head_first(dim: int, fill) -> torch.Tensor:
        return fill(batch, heads, seq_len, dim, dtype=dtype).transpose(1, 2)

    grads = [head_first(dk, torch.zeros), head_first(dk, torch.zeros), head_first(dv, torch.empty)]
    grads += [head_first(dk, torch.zeros) for _ in range(3)]  # da, db, dw
    h0 = None if initial_state is None else initial_state.detach().to(dtype).contiguous()
    final = None if grad_state is None else grad_state.detach().to(dtype).contiguous()
    dh0 = torch.empty(batch, heads, dk, dv, dtype=dtype) if need_h0 else None
    if seq_len == 0:
        if dh0 is not None:
            dh0.copy_(final) if final is not None else dh0.zero_()
        return (*grads, dh0)
    fn = _entry("recurrent_backward", dtype)
    pointers = [(ctypes.c_void_p * len(xs))(*map(_ptr, xs)) for xs in (inputs, grads)]
    strides = [(ctypes.c_int64 * (3 * len(xs)))(*(n for x in xs for n in x.stride()[:3])) for xs in (inputs, grads)]
    fn(batch, seq_len, heads, dk, dv, max(1, min(chunk_size, seq_len)), pointers[0], strides[0], pointers[1],
       strides[1], _ptr(h0), _ptr(final), _ptr(dh0), scale, torch.get_num_threads())  # fmt: skip
    return (*grads, dh0)


def _cast(grads, like):
    """Gradients in their inputs' dtypes (None where an input is None)."""
    return [None if g is None or x is None else g.to(x.dtype) for g, x in zip(grads, like, strict=True)]


class _FusedStateEvolution(torch.autograd.Function):
    @staticmethod
    def forward(ctx, settings, initial_state, q, k, v, a, b, gk):
        ctx.save_for_backward(initial_state, q, k, v, a, b, gk)
        ctx.settings = settings
        return _recurrent_forward(q, k, v, a, b, gk, None, initial_state, **settings)

    @staticmethod
    def backward(ctx, grad_o, grad_state):
        h0, q, k, v, a, b, gk = ctx.saved_tensors
        w = gk.detach().to(_dtype(q)).exp()
        dq, dk, dv, da, db, dw, dh0 = _recurrent_backward(
            q, k, v, a, b, w, grad_o, h0, grad_state, scale=ctx.settings["scale"],
            chunk_size=ctx.settings["chunk_size"], need_h0=ctx.needs_input_grad[1],
        )  # fmt: skip
        return None, *_cast([dh0, dq, dk, dv, da, db, dw * w], [h0, q, k, v, a, b, gk])


class _FusedDeltaRule(torch.autograd.Function):
    """Forward by `forward` (the chunked or the recurrent kernel); backward by the generalized recurrence's backward
    kernel, the delta rule being its case `a = k`, `b = -beta k`, key `beta k`, `w = 1` (autograd maps the gradients
    of a, b and the key back to k and beta)."""

    @staticmethod
    def forward(ctx, forward, settings, initial_state, q, k, v, beta):
        ctx.save_for_backward(initial_state, q, k, v, beta)
        ctx.settings = settings
        return forward(q, k, v, beta, initial_state, **settings)

    @staticmethod
    def backward(ctx, grad_o, grad_state):
        h0, q, k, v, beta = ctx.saved_tensors
        dtype = _dtype(q)
        key, rate = k.detach().to(dtype).requires_grad_(), beta.detach().to(dtype).requires_grad_()
        with torch.enable_grad():
            b, scaled_key = -rate[..., None] * key, rate[..., None] * key
        dq, dk_scaled, dv, da, db, _, dh0 = _recurrent_backward(
            q, scaled_key.detach(), v, key.detach(), b.detach(), torch.ones_like(key.detach()), grad_o, h0, grad_state,
            scale=ctx.settings["scale"], chunk_size=ctx.settings["chunk_size"], need_h0=ctx.needs_input_grad[2],
        )  # fmt: skip
        dk, dbeta = torch.autograd.grad([b, scaled_key], [key, rate], [db, dk_scaled])
        return None, None, *_cast([dh0, dq, dk + da, dv, dbeta], [h0, q, k, v, beta])


def fused_chunk_delta_rule(q, k, v, beta, *, scale, initial_state=None, output_final_state=False, chunk_size=64):
    """Plain delta rule, chunkwise, by the fused kernel; inputs [B, T, H, *], state [B, H, K, V]."""
    settings = {"scale": scale, "output_final_state": output_final_state, "chunk_size": chunk_size}
    return _FusedDeltaRule.apply(_chunk_forward, settings, initial_state, q, k, v, beta)


def fused_recurrent_delta_rule(q, k, v, beta, *, scale, initial_state=None, output_final_state=False, chunk_size=64):
    """Plain delta rule, token by token, by the fused kernel (chunk_size: the backward's checkpoint interval)."""

    def forward(q, k, v, beta, h0, **settings):
        return _recurrent_forward(q, k, v, None, None, None, beta, h0, **settings)

    settings = {"scale": scale, "output_final_state": output_final_state, "chunk_size": chunk_size}
    return _FusedDeltaRule.apply(forward, settings, initial_state, q, k, v, beta)


def fused_recurrent_state_evolution(q, k, v, a, b, gk, *, scale, initial_state=None, output_final_state=False, chunk_size=64):
    """Generalized rule, token by token, by the fused kernel (chunk_size: the backward's checkpoint interval)."""
    settings = {"scale": scale, "output_final_state": output_final_state, "chunk_size": chunk_size}
    return _FusedStateEvolution.apply(settings, initial_state, q, k, v, a, b, gk)


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
