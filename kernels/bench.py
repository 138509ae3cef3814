"""Benchmark of the state-evolution backends on this machine: `python -m kernels.bench [--rounds N]`.

Plain delta rule at B=4, H=4, T=4096, K=V=32 (a 64x64 map) and a 2D scan of a 64x64 map with 64 channels in 2 heads
(four directions, one call). Contenders run interleaved, round after round, and each reports its median, so load
from other processes hits all of them alike. Every fast contender is first checked against the naive loop.
The last line printed is `ratio_vs_naive=<x> ratio_vs_fla_naive_chunk=<y> fraction_of_matmul_peak=<z>` for our
chunked algorithm on this CPU: the fused C++ kernel (`fused_chunk`) where it builds, else `chunk` (the line above
it names which). x, y are time ratios (x against this package's naive loop, the oracle; the ratio against fla's
naive loop is printed above it), z = FLOPs of the chunked algorithm (`delta_rule_flops`) / time / the fp32 matmul
rate measured in the same run. The chunked PyTorch backend's ratios and the fused recurrence (`fused_recurrent`,
what `auto` runs on a CPU; another algorithm with its own FLOP count, so no z) are printed above it.

A selective-scan section (Mamba's S6, as MambaIR calls it: its four scan directions folded into the channels, B and C
one group per direction) times the backends `fused` (C++, what `auto` runs on a CPU) and `chunk`, forward and
forward + backward, and prints `ratio_selective_scan_fused_vs_chunk=<forward>/<forward+backward>`; the naive loop,
whose backward is quadratic in the length, is timed against `fused` on 2 of the 16 images
(`ratio_selective_scan_fused_vs_naive`).

For training, `delta_rule_fwd_bwd_over_fwd` and `scan2d_fwd_bwd_over_fwd` (forward + backward over forward of what
`auto` runs here; target at most 3) and `scan2d_over_stacked` (the 2D scan over one state-evolution call on the same
tokens already stacked in the four orders; target at most 1.1: reading the orders should cost nothing).
"""

import argparse
import functools
import os
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from kernels import delta_rule, fused_cpu, scan2d
from kernels.api import selective_scan, state_evolution
from kernels.chunk import delta_rule_flops

MATMUL_SIZE = 2048


def interleaved_medians(
    contenders: dict[str, Callable[[], object]], rounds: int, sync: Callable[[], None] = lambda: None
) -> dict[str, float]:
    """Median wall time of each contender over `rounds` rounds, one call of each per round (after one warm-up)."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for fn in contenders.values():
        fn()
    for _ in range(rounds):
        for name, fn in contenders.items():
            sync()
            start = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def delta_rule_inputs(batch: int, heads: int, seq_len: int, dim: int) -> tuple[torch.Tensor, ...]:
    q = torch.randn(batch, seq_len, heads, dim)
    k = F.normalize(torch.randn(batch, seq_len, heads, dim), dim=-1)
    v = torch.randn(batch, seq_len, heads, dim)
    beta = torch.rand(batch, seq_len, heads).sigmoid()
    return q, k, v, beta


def scan_inputs(side: int, channels: int, heads: int) -> tuple[torch.Tensor, ...]:
    dim = channels // heads
    shape = (1, side * side, heads, dim)
    q, v = torch.randn(shape), torch.randn(shape)
    k_hat = F.normalize(torch.randn(shape), dim=-1)
    eta = torch.rand(shape)
    gk = -0.6065 * torch.rand(shape)  # RWKV-7's log-decay range
    return q, F.normalize(torch.randn(shape), dim=-1), v, -k_hat, eta * k_hat, gk


def gpu_section(rounds: int) -> None:
    """fla's Triton kernels against our chunked PyTorch on the GPU, same shapes (only when CUDA is present)."""
    torch.manual_seed(0)
    delta = [x.cuda() for x in delta_rule_inputs(4, 4, 4096, 32)]
    scan = [x.cuda() for x in scan_inputs(64, 64, 2)]
    contenders = {}
    for dtype in (torch.float32, torch.bfloat16):
        d = [x.to(dtype) for x in delta]
        sc = [x.to(dtype) for x in scan]
        tag = str(dtype).removeprefix("torch.")
        for backend in ("fla", "chunk"):
            contenders[f"delta rule {backend} {tag}"] = lambda d=d, b=backend: delta_rule(*d, backend=b)
            contenders[f"scan2d {backend} {tag}"] = lambda sc=sc, b=backend: scan2d(*sc, height=64, width=64, backend=b)
    with torch.no_grad():
        times = interleaved_medians(contenders, rounds, sync=torch.cuda.synchronize)
    print(f"GPU {torch.cuda.get_device_name()}:")
    for name, t in times.items():
        print(f"  {name:<28s} {t * 1e3:9.2f} ms")


def backward_section(rounds: int, delta_backends: list[str], scan_backends: list[str]) -> dict[str, float]:
    """Forward + backward (the sum of the outputs) of the same two problems, for training; returns the medians."""
    torch.manual_seed(0)
    delta = [x.requires_grad_() for x in delta_rule_inputs(4, 4, 4096, 32)]
    scan = [x.requires_grad_() for x in scan_inputs(64, 64, 2)]

    def run_delta(backend: str) -> None:
        delta_rule(*delta, backend=backend)[0].sum().backward()

    def run_scan(backend: str) -> None:
        scan2d(*scan, height=64, width=64, backend=backend).sum().backward()

    contenders = {f"delta rule {b}": functools.partial(run_delta, b) for b in delta_backends}
    contenders.update({f"scan2d {b}": functools.partial(run_scan, b) for b in scan_backends})
    print("forward + backward, same shapes:")
    times = interleaved_medians(contenders, rounds)
    for name, t in times.items():
        print(f"  {name:<28s} {t * 1e3:9.1f} ms")
    return times


def stacked_scan_section(rounds: int, backend: str) -> float:
    """The 2D scan against one state-evolution call over the same tokens already stacked in the four orders: what
    reading the orders and putting the outputs back costs (1.0: nothing). Returns that ratio."""
    torch.manual_seed(0)
    inputs = scan_inputs(64, 64, 2)
    stacked = [x.repeat(4, 1, 1, 1) for x in inputs]  # [4B, T, H, K]: the token count scan2d hands to the kernel
    contenders = {"scan2d": lambda: scan2d(*inputs, height=64, width=64, backend=backend),
                  "one stacked call": lambda: state_evolution(*stacked, backend=backend)}
    with torch.no_grad():
        times = interleaved_medians(contenders, rounds)
    ratio = times["scan2d"] / times["one stacked call"]
    print(f"2D scan against one {backend} call over the 4 x 4096 stacked tokens: {times['scan2d'] * 1e3:.1f} ms / "
          f"{times['one stacked call'] * 1e3:.1f} ms")
    print(f"  scan2d_over_stacked={ratio:.2f} (target <= 1.1)")
    return ratio


# MambaIR-like selective scan: batch 16 of 24x24 patches (L = 576), four directions of 64 channels, state 16
SCAN_BATCH, SCAN_DIRECTIONS, SCAN_CHANNELS, SCAN_STATE, SCAN_LENGTH = 16, 4, 64, 16, 576
# the naive loop runs on this many of the batch's images (its backward alone would take minutes: every token's
# slices of u, delta, B and C get full-size gradients, so it is quadratic in L); so does `fused`, for the ratio
SCAN_NAIVE_BATCH = 2


def selective_scan_inputs(batch: int = SCAN_BATCH) -> list[torch.Tensor]:
    """u, delta, A, B, C, D, delta_bias at the shapes and in the ranges of a MambaIR layer (A = -(1..N) per channel,
    softplus(delta + bias) of about 0.001-0.1, as MambaIR's initialisation)."""
    k, d, n, length = SCAN_DIRECTIONS, SCAN_CHANNELS, SCAN_STATE, SCAN_LENGTH
    u = torch.randn(batch, k * d, length)
    delta = 0.1 * torch.randn(batch, k * d, length)
    A = -torch.arange(1, n + 1, dtype=torch.float32).repeat(k * d, 1)
    B, C = torch.randn(batch, k, n, length), torch.randn(batch, k, n, length)
    bias = torch.log(torch.expm1(torch.empty(k * d).uniform_(1e-3, 0.1)))  # softplus^-1 of the initial step sizes
    return [u, delta, A, B, C, torch.ones(k * d), bias]


def selective_scan_section(rounds: int, fused: bool) -> None:
    """Forward, and forward + backward (the sum of y), of the selective scan by `fused` (where it builds) and
    `chunk` at the MambaIR-like shape, and by `naive` and `fused` on SCAN_NAIVE_BATCH images of it; every contender
    is checked against the naive loop first."""
    torch.manual_seed(0)
    full = selective_scan_inputs()
    small = [x[:SCAN_NAIVE_BATCH] if x.dim() > 2 else x for x in full]
    ours = "fused" if fused else "chunk"
    contenders = {"fused": ("fused", full), "chunk": ("chunk", full), "naive, small batch": ("naive", small),
                  f"{ours}, small batch": (ours, small)}
    if not fused:
        del contenders["fused"]

    def run(backend: str, tensors: list[torch.Tensor]) -> torch.Tensor:
        u, delta, A, B, C, D, bias = tensors
        return selective_scan(u, delta, A, B, C, D, delta_bias=bias, delta_softplus=True, backend=backend)

    with torch.no_grad():
        reference = run("naive", small)
        for name, (backend, tensors) in contenders.items():
            err = ((run(backend, tensors)[:SCAN_NAIVE_BATCH] - reference).norm() / reference.norm()).item()
            assert err < 1e-4, f"selective scan {name} disagrees with the naive loop (relative error {err:.2e})"
        forward = interleaved_medians({name: functools.partial(run, *c) for name, c in contenders.items()}, rounds)
    leaves = {id(t): [x.clone().requires_grad_() for x in t] for t in (full, small)}
    both = interleaved_medians({name: lambda c=c: run(c[0], leaves[id(c[1])]).sum().backward()
                                for name, c in contenders.items()}, rounds)
    print(f"selective scan b={SCAN_BATCH} d={SCAN_DIRECTIONS}x{SCAN_CHANNELS} (directions folded) n={SCAN_STATE} "
          f"L={SCAN_LENGTH}, B/C in {SCAN_DIRECTIONS} groups, softplus, D, bias (small batch: b={SCAN_NAIVE_BATCH}):")
    for name in contenders:
        print(f"  {name:<20s} forward {forward[name] * 1e3:9.1f} ms   forward + backward {both[name] * 1e3:9.1f} ms")
    if fused:
        print(f"  ratio_selective_scan_fused_vs_chunk={forward['chunk'] / forward['fused']:.2f}/"
              f"{both['chunk'] / both['fused']:.2f}")
    else:
        print("  (no fused C++ kernels here: `auto` runs chunk)")
    small_ours = f"{ours}, small batch"
    print(f"  ratio_selective_scan_{ours}_vs_naive={forward['naive, small batch'] / forward[small_ours]:.2f}/"
          f"{both['naive, small batch'] / both[small_ours]:.2f}   (forward/forward+backward, b={SCAN_NAIVE_BATCH})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per contender (median reported)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from fla.ops.delta_rule.naive import delta_rule_chunkwise, delta_rule_recurrence

    torch.manual_seed(0)
    batch, heads, seq_len, dim, chunk_size = 4, 4, 4096, 32, 64
    q, k, v, beta = delta_rule_inputs(batch, heads, seq_len, dim)
    head_first = [x.transpose(1, 2).contiguous() for x in (q, k, v, beta)]
    mat_a, mat_b = torch.randn(MATMUL_SIZE, MATMUL_SIZE), torch.randn(MATMUL_SIZE, MATMUL_SIZE)
    scan_args = scan_inputs(64, 64, 2)
    fused, reason = fused_cpu.available()
    ours = "fused_chunk" if fused else "chunk"
    ours_delta = ["chunk", "fused_chunk", "fused_recurrent"] if fused else ["chunk"]
    ours_scan = ["chunk", "fused_recurrent"] if fused else ["chunk"]

    def run_delta(backend: str) -> torch.Tensor:
        return delta_rule(q, k, v, beta, backend=backend, chunk_size=chunk_size)[0]

    def run_scan(backend: str) -> torch.Tensor:
        return scan2d(*scan_args, height=64, width=64, backend=backend)

    with torch.no_grad():
        delta_reference, scan_reference = run_delta("naive"), run_scan("naive")
        checks = {name: (run_delta(name), delta_reference) for name in ours_delta}
        fla_chunkwise = delta_rule_chunkwise(*head_first, chunk_size=chunk_size)[0].transpose(1, 2)
        checks["fla naive chunkwise"] = (fla_chunkwise, delta_reference)
        checks.update({f"scan2d {name}": (run_scan(name), scan_reference) for name in ours_scan})
        for name, (out, reference) in checks.items():
            err = ((out - reference).norm() / reference.norm()).item()
            assert err < 1e-4, f"{name} disagrees with the naive loop (relative error {err:.2e})"

        contenders = {
            "naive loop": lambda: run_delta("naive"),
            "fla naive loop": lambda: delta_rule_recurrence(*head_first),
            "fla naive chunkwise": lambda: delta_rule_chunkwise(*head_first, chunk_size=chunk_size),
            **{name: functools.partial(run_delta, name) for name in ours_delta},
            "matmul": lambda: mat_a @ mat_b,
            "scan2d naive": lambda: run_scan("naive"),
            **{f"scan2d {name}": functools.partial(run_scan, name) for name in ours_scan},
        }
        times = interleaved_medians(contenders, rounds=args.rounds)

    flops = delta_rule_flops(batch=batch, heads=heads, seq_len=seq_len, dk=dim, dv=dim, chunk_size=chunk_size)
    peak = 2 * MATMUL_SIZE**3 / times["matmul"]
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.rounds} interleaved rounds (medians)")
    print(f"{os.cpu_count()} CPUs, load average {load} (other processes share the cores: ratios are the robust figures)")
    print(f"delta rule B={batch} H={heads} T={seq_len} K=V={dim} C={chunk_size}:")
    for name in ("naive loop", "fla naive loop", "fla naive chunkwise", *ours_delta):
        print(f"  {name:<20s} {times[name] * 1e3:9.1f} ms")
    print(f"  chunked algorithm: {flops / 1e9:.3f} GFLOP")
    for name in ours_delta:
        rate = "" if name == "fused_recurrent" else f"{flops / times[name] / 1e9:.1f} GFLOP/s, "
        print(
            f"  {name}: {rate}ratio_vs_naive={times['naive loop'] / times[name]:.2f} "
            f"ratio_vs_fla_naive_chunk={times['fla naive chunkwise'] / times[name]:.2f} "
            f"ratio_vs_fla_naive_loop={times['fla naive loop'] / times[name]:.2f}"
        )
    if fused:
        executed = fused_cpu.fused_chunk_flops(batch=batch, heads=heads, seq_len=seq_len, dk=dim, dv=dim)
        rate = executed / times["fused_chunk"]
        print(
            f"  fused_chunk executes {executed / 1e9:.3f} GFLOP (it skips the zero triangles): {rate / 1e9:.1f} GFLOP/s, "
            f"{rate / (2 * MATMUL_SIZE**3 / times['matmul']):.3f} of the matmul rate"
        )
    else:
        print(f"  (no fused C++ kernels here: {reason.splitlines()[0]})")
    print(f"fp32 matmul {MATMUL_SIZE}^3: {times['matmul'] * 1e3:.1f} ms -> {peak / 1e9:.1f} GFLOP/s")
    print("2D scan 64x64 map, 64 channels, 2 heads, 4 directions in one call (RWKV-7 decay):")
    for name in ("naive", *ours_scan):
        print(f"  scan2d {name:<15s} {times[f'scan2d {name}'] * 1e3:9.1f} ms")
    for name in ours_scan:
        print(f"  ratio_scan2d_{name}_vs_naive={times['scan2d naive'] / times[f'scan2d {name}']:.2f}")
    both = backward_section(args.rounds, ours_delta, ours_scan)
    train_backend = "fused_recurrent" if fused else "chunk"  # what `auto` runs on this CPU
    print(f"forward + backward over forward ({train_backend}, target <= 3): "
          f"delta_rule_fwd_bwd_over_fwd={both[f'delta rule {train_backend}'] / times[train_backend]:.2f} "
          f"scan2d_fwd_bwd_over_fwd={both[f'scan2d {train_backend}'] / times[f'scan2d {train_backend}']:.2f}")
    stacked_scan_section(args.rounds, train_backend)
    selective_scan_section(args.rounds, fused)
    if torch.cuda.is_available():
        gpu_section(args.rounds)
    print(f"our chunked algorithm on this CPU: {ours}")
    print(
        f"ratio_vs_naive={times['naive loop'] / times[ours]:.2f} "
        f"ratio_vs_fla_naive_chunk={times['fla naive chunkwise'] / times[ours]:.2f} "
        f"fraction_of_matmul_peak={flops / times[ours] / peak:.3f}"
    )


if __name__ == "__main__":
    main()
