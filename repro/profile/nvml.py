"""GPU utilisation, memory and power sampled by NVML (``nvidia-ml-py``, ``import pynvml``) in a background thread
while the timed runs execute.

NVML's utilisation is the fraction of the last sample period (1/6 s to 1 s, by GPU) in which a kernel ran, not how
busy the SMs were; power is the board's draw in watts. Samples every ``interval_s`` seconds.
"""

from __future__ import annotations

import threading
import time
from typing import Self

import numpy as np
import torch


def unavailable_reason(device: torch.device) -> str | None:
    """Why NVML cannot sample ``device`` here, or None when it can."""
    if device.type != "cuda":
        return f"device is {device.type}: NVML samples NVIDIA GPUs only"
    try:
        import pynvml
    except ImportError:
        return "nvidia-ml-py (pynvml) is not installed"
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as error:
        return f"NVML did not initialise: {error}"
    return None


def _handle(pynvml, device: torch.device):
    """The NVML handle of a torch CUDA device: by PCI bus id (CUDA_VISIBLE_DEVICES renumbers torch's indices)."""
    index = device.index if device.index is not None else torch.cuda.current_device()
    props = torch.cuda.get_device_properties(index)
    bus = getattr(props, "pci_bus_id", None)
    if bus is not None:
        domain = getattr(props, "pci_domain_id", 0)
        try:
            return pynvml.nvmlDeviceGetHandleByPciBusId(f"{domain:08X}:{bus:02X}:{props.pci_device_id:02X}.0")
        except (pynvml.NVMLError, AttributeError):
            pass
    return pynvml.nvmlDeviceGetHandleByIndex(index)


class Sampler:
    """``with Sampler(device) as s: ...`` samples in a thread; ``s.summary()`` afterwards.

    Args:
        device: a CUDA device (``unavailable_reason`` is None for it).
        interval_s: seconds between samples.
    """

    def __init__(self, device: torch.device, interval_s: float = 0.05) -> None:
        import pynvml

        self._nvml = pynvml
        pynvml.nvmlInit()
        self._handle = _handle(pynvml, device)
        self.interval_s = interval_s
        self.samples: list[tuple[float, float, float, float]] = []  # gpu %, memory-controller %, used MiB, W
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        nvml = self._nvml
        while not self._stop.is_set():
            util = nvml.nvmlDeviceGetUtilizationRates(self._handle)
            used = nvml.nvmlDeviceGetMemoryInfo(self._handle).used / 2**20
            power = nvml.nvmlDeviceGetPowerUsage(self._handle) / 1e3  # mW -> W
            self.samples.append((float(util.gpu), float(util.memory), float(used), float(power)))
            time.sleep(self.interval_s)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict:
        """Mean and max of each field over the samples, their count and the interval."""
        if not self.samples:
            return {"n_samples": 0, "interval_s": self.interval_s}
        x = np.asarray(self.samples)
        names = ("gpu_util_pct", "memory_util_pct", "memory_used_mib", "power_w")
        name = self._nvml.nvmlDeviceGetName(self._handle)
        out = {"n_samples": len(self.samples), "interval_s": self.interval_s,
               "device_name": name.decode() if isinstance(name, bytes) else str(name)}
        for i, name in enumerate(names):
            out[name] = {"mean": float(x[:, i].mean()), "max": float(x[:, i].max())}
        return out
