"""Resource pools: GPUs by index and CPU worker slots, reserved by tasks and given back when they end."""

from __future__ import annotations

import threading
from typing import Any

from digits.hardware import Gpu


def gpus_asked(count: int) -> str:
    """How a request too large for any place begins: "1 GPU was asked for", "3 GPUs were asked for"."""
    return "1 GPU was asked for" if count == 1 else f"{count} GPUs were asked for"


class ResourcePools:
    """Hands out GPUs and CPU slots. A task's ``resources`` is ``{"cpu": 1}``, ``{"gpus": 2}`` (any two free)
    or ``{"gpus": [0, 3]}`` (those ones)."""

    def __init__(self, gpus: list[Gpu], cpu_slots: int):
        self.gpus = gpus
        self.cpu_slots = max(1, cpu_slots)
        self._busy_gpus: set[int] = set()
        self._busy_cpu = 0
        self._lock = threading.Lock()

    def missing(self, request: dict[str, Any]) -> str | None:
        """Why ``request`` can never be met on this machine, or None."""
        wanted = request.get("gpus")
        indices = {g.index for g in self.gpus}
        if isinstance(wanted, list):
            unknown = sorted(set(wanted) - indices)
            if unknown:
                return f"GPU {', '.join(map(str, unknown))} does not exist on this machine (it has {len(indices)})"
        elif wanted and wanted > len(indices):
            return f"{gpus_asked(wanted)} but this machine has {len(indices)}"
        return None

    def try_reserve(self, request: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
        """Reserve what ``request`` asks for: (the assignment, "") or (None, what the task waits for)."""
        with self._lock:
            wanted = request.get("gpus")
            if wanted:
                free = [g.index for g in self.gpus if g.index not in self._busy_gpus]
                if isinstance(wanted, list):
                    if not set(wanted) <= set(free):
                        busy = sorted(set(wanted) - set(free))
                        return None, f"waiting for GPU {', '.join(map(str, busy))}"
                    chosen = list(wanted)
                else:
                    if len(free) < wanted:
                        return None, "waiting for a GPU" if wanted == 1 else f"waiting for {wanted} GPUs"
                    chosen = free[:wanted]
                self._busy_gpus.update(chosen)
                return {"gpus": chosen}, ""
            cpu = request.get("cpu", 0)
            if cpu:
                if self._busy_cpu + cpu > self.cpu_slots:
                    return None, "waiting for a CPU slot"
                self._busy_cpu += cpu
                return {"cpu": cpu}, ""
            return {}, ""

    def release(self, assignment: dict[str, Any]) -> None:
        with self._lock:
            self._busy_gpus.difference_update(assignment.get("gpus", []))
            self._busy_cpu -= assignment.get("cpu", 0)

    def describe(self) -> dict[str, Any]:
        with self._lock:
            return {
                "gpus": [{"index": g.index, "name": g.name, "busy": g.index in self._busy_gpus} for g in self.gpus],
                "cpu_slots": self.cpu_slots,
                "cpu_slots_busy": self._busy_cpu,
            }
