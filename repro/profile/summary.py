"""A few readable lines of a profile (the JSON holds everything)."""

from __future__ import annotations


def _mib(entry: dict | None, key: str) -> str:
    return "-" if not entry else f"{entry[key] / 2**20:.0f} MiB"


def format_profile(p: dict) -> str:
    """Parameters, FLOPs, kernels, times, memory and what is missing, one line each."""
    h, w = p["input"]["lr_hw"]
    parts = ", ".join(f"{k} {v['params']:,d}" for k, v in p["params"]["parts"].items())
    where = (f"{p['model']} x{p['scale']} on {p['device_name']} ({p['device']}, {p['precision']}, "
             f"{p['threads']} threads), LR {h}x{w} ({p['input']['preset']})")
    analytic = "".join(f"; {op} analytic {v / 1e9:.3f} GFLOP" for op, v in p["analytic"].items())
    lines = [where, f"params {p['params']['total']:,d}" + (f" ({parts})" if parts else ""),
             f"FLOPs {p['flops'] / 1e9:.3f} G, MACs {p['macs'] / 1e9:.3f} G{analytic}"]
    for op, k in p["kernels"].items():
        lines.append(f"kernel {op}: {'/'.join(k['backends'])} ({'/'.join(k['forms'])}), {k['calls']} calls")
    for phase in ("inference", "train_step"):
        t = p[phase]
        if t is not None:
            lines.append(f"{phase}: median {t['median_s'] * 1e3:.1f} ms (p10 {t['p10_s'] * 1e3:.1f}, "
                         f"p90 {t['p90_s'] * 1e3:.1f}, n {t['n']})")
    memory = p["memory"]
    key = "peak_allocated_bytes" if p["device"].startswith("cuda") else "peak_rss_bytes"
    lines.append(f"peak memory: inference {_mib(memory['inference'], key)}, train step {_mib(memory['train_step'], key)}")
    for field, reason in p["missing"].items():
        lines.append(f"missing {field}: {reason}")
    return "\n".join(lines)
