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

Gradients: when one is wanted, the recurrent forward keeps the state every `chunk_size` steps; one backward kernel
(recurrent_backward_cpu.cpp) sweeps each chunk in reverse from those checkpoints (the chunked forward keeps none: the
backward makes them), with a sweep of its own for the delta rule. `fused_scan2d` reads the 2D scan's orders by index
in the same kernels (kernels/scan2d.py).
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
           CSRC / "selective_scan_cpu.cpp", CSRC / "seb_inputs_cpu.cpp"]
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
        "recurrent_forward": [ctypes.c_int] + [size] * 6 + [pointer, index] * 7 + [pointer] * 2 + [index]
        + [pointer] * 4 + [size] + scale_threads,
        "recurrent_backward": [ctypes.c_int] + [size] * 7 + [pointer, index] * 2 + [pointer] * 7 + scale_threads,
        # the selective scan's (kernels/selective_scan_fused.py): sizes, input pointers, softplus flag, ..., threads
        "selective_scan_forward": [index, pointer, ctypes.c_int, pointer, pointer, ctypes.c_int],
        "selective_scan_backward": [index, pointer, ctypes.c_int, pointer, pointer, pointer, ctypes.c_int],
    }
    for name, argtypes in signatures.items():
        for suffix in ("_f32", "_f64"):
            fn = getattr(lib, name + suffix)
            fn.restype, fn.argtypes = ctypes.c_int, argtypes
    # the SEB's scan inputs for inference (csrc/seb_inputs_cpu.cpp), fp32 only: sizes, 3 + 4 inputs, 4 outputs
    lib.seb_inputs_f32.restype = ctypes.c_int
    lib.seb_inputs_f32.argtypes = [size] * 3 + [pointer] * 11 + [ctypes.c_int]
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


def _unit_features(x: torch.Tensor) -> torch.Tensor:
    """x with a contiguous last dimension (the only layout requirement of the kernels)."""
    return x if x.ndim < 4 or x.stride(-1) == 1 else x.contiguous()


def _prepare(tensors, dtype, *, head_first=True):
    """Detached tensors in the compute dtype, each (batch, head) sequence contiguous unless not `head_first`."""
    layout = _head_first if head_first else _unit_features
    return [None if x is None else layout(x.detach().to(dtype)) for x in tensors]


def _ptr(x: torch.Tensor | None):
    return None if x is None else x.data_ptr()


def _strides(x: torch.Tensor | None, direction: int = 0):
    """(batch, token, head, direction) element strides of a [B, T, H, D] or [B, T, H] tensor."""
    return None if x is None else (ctypes.c_int64 * 4)(*x.stride()[:3], direction)


def _state(x: torch.Tensor | None, dtype) -> torch.Tensor | None:
    return None if x is None else x.detach().to(dtype).contiguous()


def _entry(name: str, dtype: torch.dtype):
    """The kernel entry point `name` for fp32 or fp64 (csrc/ exports each as name_f32 and name_f64)."""
    return getattr(load_library(), f"{name}_{'f32' if dtype == torch.float32 else 'f64'}")


def _dtype(q: torch.Tensor) -> torch.dtype:
    dtype = compute_dtype(q.dtype)
    if q.device.type != "cpu":
        raise ValueError(f"the fused CPU kernels take CPU tensors, got device {q.device}")
    return dtype


def _chunk_forward(inputs, h0, *, scale, output_final_state, chunk_size, keep):
    """Delta rule by csrc/delta_rule_cpu.cpp; inputs (q, k, v, beta) prepared. Keeps no checkpoints or read-outs
    (`keep` is ignored: the backward recomputes them)."""
    del keep
    q, k, v, beta = inputs
    batch, seq_len, heads, dk = q.shape
    o = torch.empty(batch, heads, seq_len, v.shape[-1], dtype=q.dtype).transpose(1, 2)  # head-first, see _head_first
    state = _final_state(q, v, h0, output_final_state)
    if seq_len:
        fn = _entry("delta_rule_forward", q.dtype)
        chunk = max(1, min(chunk_size, seq_len))
        args = [_ptr(q), _strides(q), _ptr(k), _strides(k), _ptr(v), _strides(v), _ptr(beta), _strides(beta)]
        fn(batch, seq_len, heads, dk, v.shape[-1], chunk, *args, _ptr(o), _strides(o), _ptr(h0), _ptr(state), scale,
           torch.get_num_threads())  # fmt: skip
    return o.contiguous(), state, (None, None)


def _state_shape(q, v, dirs: int = 1) -> tuple[int, ...]:
    """[B, H, K, V], or [B, H, D, K, V] for D reading orders."""
    batch, _, heads, dk = q.shape
    return (batch, heads, *([dirs] if dirs > 1 else []), dk, v.shape[-1])


def _final_state(q, v, h0, output_final_state, dirs: int = 1):
    shape = _state_shape(q, v, dirs)
    state = torch.empty(shape, dtype=q.dtype) if output_final_state else None
    if state is not None and q.shape[1] == 0:  # nothing evolves: the final state is the initial one
        state.copy_(h0.view(shape)) if h0 is not None else state.zero_()
    return state


def _recurrent_forward(inputs, h0, *, scale, output_final_state, chunk_size, keep, order=None):
    """csrc/recurrent_cpu.cpp on prepared inputs (q, k, v, a, b, w, beta): the generalized rule (beta None) or the
    delta rule (a, b, w None). Returns (o, final state, saved): o is [B, T, H, V], or [D, B, T, H, V] for the D
    reading orders of `order` ([D, T] token rows); with `keep`, saved = (checkpoints, reads) for the backward: the
    state before every chunk_size-th step [B, H, D, N, K, V] and every step's read-out a^T S_{t-1} [D, B, T, H, V],
    else (None, None)."""
    q, v, beta = inputs[0], inputs[2], inputs[6]
    batch, seq_len, heads, dk = q.shape
    dirs, dv = (1 if order is None else order.shape[0]), v.shape[-1]
    o = torch.empty(dirs, batch, seq_len, heads, dv, dtype=q.dtype)  # written in place (see _prepare)
    o_strides = _strides(o[0], o.stride(0))
    state = _final_state(q, v, h0, output_final_state, dirs)
    chunk = max(1, min(chunk_size, seq_len))
    n_chunks = -(-seq_len // chunk)
    keep = keep and seq_len > 0
    checkpoints = torch.empty(batch, heads, dirs, n_chunks, dk, dv, dtype=q.dtype) if keep else None
    reads = torch.empty_like(o) if keep else None  # same strides as o
    if seq_len:
        fn = _entry("recurrent_forward", q.dtype)
        args = [item for x in inputs for item in (_ptr(x), _strides(x))]
        fn(int(beta is not None), batch, seq_len, heads, dirs, dk, dv, *args, _ptr(order), _ptr(o), o_strides,
           _ptr(reads), _ptr(h0), _ptr(state), _ptr(checkpoints), chunk, scale, torch.get_num_threads())  # fmt: skip
    return (o[0] if order is None else o), state, (checkpoints, reads)


def _recurrent_backward(inputs, grad_o, h0, grad_state, saved, *, scale, chunk_size, need_h0, order=None,
                        merge=None):
    """Gradients of the inputs (q, k, v, a, b, w, beta) of _recurrent_forward, of h0 (None unless `need_h0`) and of
    the merge weights, by csrc/recurrent_backward_cpu.cpp: (dq, dk, dv, da, db, dgk, None, dh0, dmerge) for the
    generalized rule, with dgk the gradient of the log-decay gk (w = exp(gk)), or (dq, dk, dv, None, None, None, dbeta,
    dh0, dmerge) for the delta rule. grad_o is [B, T, H, V], or [D, B, T, H, V] with `order`; `saved`: the forward's
    (checkpoints, reads), either None where it kept none (recomputed). `merge`: (weights [D, H, V], the forward's o
    [D, B, T, H, V] or None) when the caller merged the directions, o = sum_d weights[d] o_d: grad_o is then that
    sum's gradient [B, T, H, V], and dmerge [D, H, V] the weights' (None without the forward's o, or without merge)."""
    q, v, beta = inputs[0], inputs[2], inputs[6]
    delta = beta is not None
    dtype = q.dtype
    batch, seq_len, heads, dk = q.shape
    dirs, dv = (1 if order is None else order.shape[0]), v.shape[-1]
    weights, outputs = merge if merge is not None else (None, None)
    # as the forward's o; a merged gradient is every direction's (direction stride 0), the kernel weighs it
    grad_o = grad_o.to(dtype).contiguous().view(1 if merge is not None else dirs, batch, seq_len, heads, dv)
    checkpoints, reads = saved
    grads = [None if x is None else torch.empty(x.shape, dtype=dtype) for x in inputs]
    final = _state(grad_state, dtype)
    dh0 = torch.empty(_state_shape(q, v, dirs), dtype=dtype) if need_h0 else None
    dmerge = torch.empty(batch, heads, dirs, dv, dtype=dtype) if outputs is not None else None  # per batch element
    if seq_len == 0:  # nothing evolves: dh0 is the final state's gradient, the weights' gradient zero
        if dh0 is not None:
            dh0.copy_(final) if final is not None else dh0.zero_()
        if dmerge is not None:
            dmerge.zero_()
    else:
        # a pointer and 4 strides per tensor (inputs, then grad_o, reads and outputs, which have directions, then
        # the gradients)
        per_direction = [None if x is None else x.view(-1, batch, seq_len, heads, dv) for x in (grad_o, reads, outputs)]
        tables = []
        for xs, directions in (([*inputs, *(None if x is None else x[0] for x in per_direction)],
                                [0] * len(inputs) + [0 if x is None or x.shape[0] == 1 else x.stride(0)
                                                     for x in per_direction]),
                               (grads, [0] * len(grads))):
            strides = [n for x, d in zip(xs, directions, strict=True) for n in (_strides(x, d) or (0, 0, 0, 0))]
            tables += [(ctypes.c_void_p * len(xs))(*map(_ptr, xs)), (ctypes.c_int64 * len(strides))(*strides)]
        _entry("recurrent_backward", dtype)(
            int(delta), batch, seq_len, heads, dirs, dk, dv, max(1, min(chunk_size, seq_len)), *tables, _ptr(order),
            _ptr(weights), _ptr(dmerge), _ptr(h0), _ptr(final), _ptr(checkpoints), _ptr(dh0), scale,
            torch.get_num_threads())  # fmt: skip
    return (*grads, dh0, None if dmerge is None else dmerge.sum(0).transpose(0, 1))


def _dtypes(*tensors):
    return [None if x is None else x.dtype for x in tensors]


def _cast(grads, dtypes):
    """Gradients in their inputs' dtypes (None where the input or its gradient is None)."""
    return [None if g is None or dtype is None else g.to(dtype) for g, dtype in zip(grads, dtypes, strict=True)]


class _FusedStateEvolution(torch.autograd.Function):
    """The generalized rule, token by token: forward by csrc/recurrent_cpu.cpp (keeping the state every chunk_size
    steps when a gradient is wanted), backward by csrc/recurrent_backward_cpu.cpp. With `order` ([D, T] token rows),
    every (batch, head) sequence is read in D orders and o is [D, B, T, H, V] (the 2D scan), or, with `merge`
    ([D, H, V] weights), their weighted sum [B, T, H, V], whose backward weighs the gradient in the kernel."""

    @staticmethod
    def forward(ctx, settings, order, initial_state, q, k, v, a, b, gk, merge=None):
        dtype = _dtype(q)
        w = gk.detach().to(dtype).exp()  # the decay factors, vectorised by torch
        inputs = [*_prepare([q, k, v, a, b, w], dtype, head_first=False), None]
        h0 = _state(initial_state, dtype)
        o, state, saved = _recurrent_forward(inputs, h0, order=order, **settings)
        weights = outputs = None
        if merge is not None:
            weights, directions = merge.detach().to(dtype).contiguous(), o
            outputs = directions if settings["keep"] and ctx.needs_input_grad[9] else None  # for dmerge
            o = torch.mul(directions[0], weights[0])  # weights[d] [H, V] broadcast over [B, T, H, V]
            for d in range(1, weights.shape[0]):
                o.addcmul_(directions[d], weights[d])
        ctx.save_for_backward(h0, *saved, weights, outputs, *inputs[:6])
        ctx.settings, ctx.order = settings, order
        ctx.dtypes = _dtypes(initial_state, q, k, v, a, b, gk, merge)
        return o, state

    @staticmethod
    def backward(ctx, grad_o, grad_state):
        h0, checkpoints, reads, weights, outputs, *inputs = ctx.saved_tensors
        dq, dk, dv, da, db, dgk, _, dh0, dmerge = _recurrent_backward(
            [*inputs, None], grad_o, h0, grad_state, (checkpoints, reads), scale=ctx.settings["scale"],
            chunk_size=ctx.settings["chunk_size"], need_h0=ctx.needs_input_grad[2], order=ctx.order,
            merge=None if weights is None else (weights, outputs),
        )  # fmt: skip
        return None, None, *_cast([dh0, dq, dk, dv, da, db, dgk, dmerge], ctx.dtypes)


class _FusedDeltaRule(torch.autograd.Function):
    """Forward by `forward` (the chunked or the recurrent kernel), backward by the delta rule's reverse sweep of
    csrc/recurrent_backward_cpu.cpp (from the recurrent forward's checkpoints; the chunked one keeps none)."""

    @staticmethod
    def forward(ctx, forward, settings, initial_state, q, k, v, beta):
        dtype = _dtype(q)
        inputs = _prepare([q, k, v, beta], dtype, head_first=forward is _chunk_forward)
        h0 = _state(initial_state, dtype)
        o, state, saved = forward(inputs, h0, **settings)
        ctx.save_for_backward(h0, *saved, *inputs)
        ctx.settings = settings
        ctx.dtypes = _dtypes(initial_state, q, k, v, beta)
        return o, state

    @staticmethod
    def backward(ctx, grad_o, grad_state):
        h0, checkpoints, reads, q, k, v, beta = ctx.saved_tensors
        dq, dk, dv, _, _, _, dbeta, dh0, _ = _recurrent_backward(
            [q, k, v, None, None, None, beta], grad_o, h0, grad_state, (checkpoints, reads),
            scale=ctx.settings["scale"], chunk_size=ctx.settings["chunk_size"], need_h0=ctx.needs_input_grad[2],
        )  # fmt: skip
        return None, None, *_cast([dh0, dq, dk, dv, dbeta], ctx.dtypes)


def _recurrent_delta(inputs, h0, **settings):
    q, k, v, beta = inputs
    return _recurrent_forward([q, k, v, None, None, None, beta], h0, **settings)


def _settings(scale, output_final_state, chunk_size, *tensors) -> dict:
    """The kernels' settings; `keep`: whether the forward keeps what the backward reads, i.e. whether autograd records
    the call (inside the autograd function `ctx.needs_input_grad` is true for a leaf even under torch.no_grad())."""
    keep = torch.is_grad_enabled() and any(x is not None and x.requires_grad for x in tensors)
    return {"scale": scale, "output_final_state": output_final_state, "chunk_size": chunk_size, "keep": keep}


def fused_chunk_delta_rule(q, k, v, beta, *, scale, initial_state=None, output_final_state=False, chunk_size=64):
    """Plain delta rule, chunkwise, by the fused kernel; inputs [B, T, H, *], state [B, H, K, V]."""
    settings = _settings(scale, output_final_state, chunk_size, initial_state, q, k, v, beta)
    return _FusedDeltaRule.apply(_chunk_forward, settings, initial_state, q, k, v, beta)


def fused_recurrent_delta_rule(q, k, v, beta, *, scale, initial_state=None, output_final_state=False, chunk_size=64):
    """Plain delta rule, token by token, by the fused kernel (chunk_size: the backward's checkpoint interval)."""
    settings = _settings(scale, output_final_state, chunk_size, initial_state, q, k, v, beta)
    return _FusedDeltaRule.apply(_recurrent_delta, settings, initial_state, q, k, v, beta)


def fused_recurrent_state_evolution(q, k, v, a, b, gk, *, scale, initial_state=None, output_final_state=False, chunk_size=64):
    """Generalized rule, token by token, by the fused kernel (chunk_size: the backward's checkpoint interval)."""
    settings = _settings(scale, output_final_state, chunk_size, initial_state, q, k, v, a, b, gk)
    return _FusedStateEvolution.apply(settings, None, initial_state, q, k, v, a, b, gk)


def fused_scan2d(q, k, v, a, b, gk, *, order: torch.Tensor, scale, chunk_size=64, merge=None) -> torch.Tensor:
    """The generalized rule over every (batch, head) sequence read in the D orders of `order` ([D, T] token rows,
    int64), from zero states, in one kernel call that reads the rows by index: o [D, B, T, H, V], each direction's
    output at its tokens' row-major positions (kernels/scan2d.py), or with `merge` ([D, H, V] weights) the weighted
    sum of the directions, [B, T, H, V]."""
    settings = _settings(scale, False, chunk_size, q, k, v, a, b, gk, merge)
    order = order.to(device="cpu", dtype=torch.int64).contiguous()
    return _FusedStateEvolution.apply(settings, order, None, q, k, v, a, b, gk, merge)[0]


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


def seb_scan_inputs(k, lora_decay, lora_eta, decay_bias, eta_bias, key_norm_scale, key_eta_scale, *, head_size):
    """The SEB's scan inputs (gk, a, b, k_tilde), each like k [B, T, C], by csrc/seb_inputs_cpu.cpp: the torch
    expressions of `models.seb.SEB._scan_inputs` in one pass, for inference (fp32 CPU tensors, no autograd)."""
    tensors = [x.detach().contiguous() for x in (k, lora_decay, lora_eta)]
    params = [x.detach().contiguous() for x in (decay_bias, eta_bias, key_norm_scale, key_eta_scale)]
    if any(x.dtype != torch.float32 or x.device.type != "cpu" for x in tensors + params):
        raise ValueError("seb_scan_inputs takes fp32 CPU tensors")
    channels = k.shape[-1]
    if channels % head_size or any(x.shape != k.shape for x in tensors) or any(x.shape != (channels,) for x in params):
        raise ValueError(f"seb_scan_inputs: k and the LoRA outputs must share [..., C] and the parameters be [C] "
                         f"with C a multiple of head_size {head_size}; got {[tuple(x.shape) for x in tensors + params]}")
    outputs = [torch.empty_like(tensors[0]) for _ in range(4)]
    rows = tensors[0].numel() // channels
    load_library().seb_inputs_f32(rows, channels // head_size, head_size, *map(_ptr, tensors + params + outputs),
                                  torch.get_num_threads())
    return tuple(outputs)
