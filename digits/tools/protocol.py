"""The JSON-lines protocol between a tool (child process) and the scheduler.

A tool writes one JSON object per line on stdout; every object has an ``event`` key:

- ``{"event": "progress", "done": 10, "total": 100}``
- ``{"event": "skipped", "path": "...", "label": "cat", "reason": "..."}``
- ``{"event": "result", ...}``: fields merged into the task's data
- ``{"event": "error", "message": "...", "traceback": "..."}``

Anything a human should read goes to stderr (the task's log file).
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence

_lock = threading.Lock()
_stdout = sys.stdout

PARENT_PID_ENV = "DIGITS_PARENT_PID"
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def emit(event: str, **fields) -> None:
    """Write one protocol event to stdout and flush it."""
    line = json.dumps({"event": event, **fields}, default=_jsonable)
    with _lock:
        _stdout.write(line + "\n")
        _stdout.flush()


def _jsonable(value):
    # numpy scalars and arrays reach us from tools; convert without importing numpy here.
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class ProgressReporter:
    """Emits ``progress`` events, at most every ``interval`` seconds (and always the last one)."""

    def __init__(self, total: int, interval: float = 0.5):
        self.total = total
        self.interval = interval
        self._last = 0.0

    def update(self, done: int, **fields) -> None:
        now = time.monotonic()
        if done >= self.total or now - self._last >= self.interval:
            self._last = now
            emit("progress", done=done, total=self.total, **fields)


def exit_when_orphaned() -> None:
    """Exit (status 3) as soon as the process named by ``DIGITS_PARENT_PID`` is no longer our parent.

    A thread checks every second. Does nothing when the variable is not set (a tool run by hand).
    """
    parent = os.environ.get(PARENT_PID_ENV)
    if parent and parent.isdigit():
        threading.Thread(target=_watch_parent, args=(int(parent),), name="orphan-watch", daemon=True).start()


def _watch_parent(parent_pid: int) -> None:
    # If the server dies (even by SIGKILL) its children must not run on unattended.
    while os.getppid() == parent_pid:
        time.sleep(1.0)
    os._exit(3)


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (a tool's worker whose tool was killed).

    A worker blocked writing to a pipe its siblings keep open would otherwise wait forever.
    Elsewhere this does nothing; workers then notice the parent is gone when they next look.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def run_tool(main: Callable[[Sequence[str]], int | None], argv: Sequence[str] | None = None) -> None:
    """Run a tool's ``main(argv)``, turning any exception into an ``error`` event and exit status 1."""
    exit_when_orphaned()
    try:
        status = main(sys.argv[1:] if argv is None else argv)
    except KeyboardInterrupt:
        sys.exit(130)
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001 - every failure must reach the parent as an event
        emit("error", message=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
        traceback.print_exc()
        sys.exit(1)
    sys.exit(status or 0)
