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
