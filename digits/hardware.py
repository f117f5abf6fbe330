"""What the machine has: GPUs through NVML (none is fine), CPU and memory through psutil."""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass
class Gpu:
    index: int
    name: str
    memory_total: int


def discover_gpus() -> list[Gpu]:
    """The GPUs NVML reports; an empty list on machines without an NVIDIA driver."""
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        log.info("no NVIDIA GPU found (%s); tasks run on the CPU", exc)
        return []
    try:
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle).total
            gpus.append(Gpu(index, name.decode() if isinstance(name, bytes) else name, memory))
        return gpus
    finally:
        pynvml.nvmlShutdown()


def gpu_usage(indices: list[int]) -> list[dict]:
    """Utilization, memory and temperature of the given GPUs; empty without NVML."""
    if not indices:
        return []
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # no driver, or no library: nothing to show
        return []
    try:
        usage = []
        for index in indices:
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            name = pynvml.nvmlDeviceGetName(handle)
            usage.append(
                {
                    "index": index,
                    "name": name.decode() if isinstance(name, bytes) else name,
                    "utilization": pynvml.nvmlDeviceGetUtilizationRates(handle).gpu,
                    "memory_used": memory.used,
                    "memory_total": memory.total,
                    "temperature": pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU),
                }
            )
        return usage
    finally:
        pynvml.nvmlShutdown()


def process_usage(pid: int) -> dict | None:
    """CPU percent and resident memory of a task's process and its children; None once it has ended."""
    import psutil

    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
        cpu = sum(p.cpu_percent(interval=0.05) for p in processes)
        rss = sum(p.memory_info().rss for p in processes)
    except psutil.Error:
        return None
    return {"cpu_percent": round(cpu, 1), "memory_rss": rss}
