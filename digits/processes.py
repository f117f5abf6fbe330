"""Tools as child processes: start one, read its JSON lines, write to its stdin, stop its process group.

``start_tool(command, log=...)`` runs ``python -m <tool> ARGS`` in a session of its own (so a signal reaches
every process the tool starts), with its stderr appended to ``log`` (TensorFlow's start-up notices
folded into one line, :data:`STARTUP_NOTICE`) and ``DIGITS_PARENT_PID`` set (so it
exits when this process is gone, see :func:`digits.tools.protocol.exit_when_orphaned`). A thread reads its
stdout: each line that is a JSON object goes to ``on_event``, any other line to ``on_line``, and
``on_exit(returncode)`` comes last, once the tool has ended and everything it wrote has been read. When the
tool ends, whatever it started and left behind is killed.

Callers hold the result as a :class:`RunningTool`: start, events, write, terminate, wait, pid. A tool run
on another machine (a cluster backend streaming the same lines back) would offer the same.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from digits.tools.protocol import PARENT_PID_ENV

log = logging.getLogger(__name__)

# What TensorFlow's C++ side prints as it starts (absl before its log is set up, oneDNN, CUDA probing on a
# machine without a GPU): true and harmless, but in a log tail "failed call to cuInit" reads as a failure.
# Such lines are folded into one line of the task's log (two on a machine without a usable GPU).
STARTUP_NOTICE = re.compile(
    r"^(?:WARNING: All log messages before absl::InitializeLog"
    r"|[IWE]\d{4} [\d:. ]+\d+ (?:port|cudart_stub|cuda_platform|cuda_executor|cuda_diagnostics|cpu_feature_guard)\.cc:)"
)
NO_GPU_NOTICE = re.compile(r"cuInit|Could not find cuda drivers")

OnEvent = Callable[[dict], None]
OnLine = Callable[[str], None]
OnExit = Callable[[int], None]


class RunningTool(Protocol):
    """What the rest of DIGITS uses of a started tool, wherever it runs."""

    @property
    def pid(self) -> int | None:
        """The tool's process id where it can be seen from here (None elsewhere)."""

    @property
    def returncode(self) -> int | None:
        """The tool's exit status (negative: the signal that killed it); None while it runs."""

    def write(self, line: str) -> None:
        """Send ``line`` and a newline to the tool's stdin; OSError (BrokenPipeError) once it has gone."""

    def terminate(self, grace: float = 5.0) -> None:
        """Ask the tool and everything it started to stop (SIGTERM), killing what is left after ``grace`` s."""

    def wait(self, timeout: float | None = None) -> int | None:
        """The exit status once the tool has ended and ``on_exit`` has run; None if ``timeout`` passes first."""


def start_tool(
    command: Sequence[str],
    *,
    log: Path,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    on_event: OnEvent | None = None,
    on_line: OnLine | None = None,
    on_exit: OnExit | None = None,
    stdin: bool = False,
    stdout_to_log: bool = False,
) -> ToolProcess:
    """Start ``command`` on this machine; returns the running tool.

    ``env`` is added to this process's environment. ``stdin`` opens a pipe for :meth:`ToolProcess.write`
    (otherwise the tool reads nothing). ``stdout_to_log`` sends stdout to ``log`` as well, for a program
    that speaks no protocol (TensorBoard): then only ``on_exit`` is called. Raises OSError when the command
    cannot be started.
    """
    child_env = {**os.environ, **(env or {}), PARENT_PID_ENV: str(os.getpid())}
    with open(log, "a") as log_file:
        popen = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=child_env,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=log_file if stdout_to_log else subprocess.PIPE,
            stderr=log_file if stdout_to_log else subprocess.PIPE,
            start_new_session=True,
            text=True,
            bufsize=1,
        )
    return ToolProcess(popen, on_event, on_line, on_exit, log)


def run_to_end(
    command: Sequence[str], *, log: Path, timeout: float, cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[int | None, list[dict]]:  # fmt: skip
    """Run a tool until it ends; returns its exit status and the events it wrote, in order.

    The status is None when the tool ran past ``timeout`` seconds: its process group was killed then.
    """
    events: list[dict] = []
    process = start_tool(command, log=log, cwd=cwd, env=env, on_event=events.append)
    returncode = process.wait(timeout)
    if returncode is None:
        process.terminate(grace=0)
        process.wait()
    return returncode, events


class ToolProcess:
    """A tool running as a child process of this one, leading a process group of its own."""

    def __init__(self, popen: subprocess.Popen, on_event: OnEvent | None, on_line: OnLine | None,
                 on_exit: OnExit | None, log: Path | None = None):  # fmt: skip
        self._popen = popen
        self._on_event = on_event
        self._on_line = on_line
        self._on_exit = on_exit
        self._done = threading.Event()
        reading = popen.stdout is not None
        self._stderr = None
        if popen.stderr is not None:
            self._stderr = threading.Thread(target=self._copy_stderr, args=(log,), name=f"err-{popen.pid}", daemon=True)
            self._stderr.start()
        threading.Thread(target=self._reap, args=(not reading,), name=f"reap-{popen.pid}", daemon=True).start()
        if reading:
            threading.Thread(target=self._read, name=f"tool-{popen.pid}", daemon=True).start()

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        return self._popen.poll()

    def write(self, line: str) -> None:
        if self._popen.stdin is None:
            raise OSError("the tool was started without stdin")
        self._popen.stdin.write(line + "\n")
        self._popen.stdin.flush()

    def terminate(self, grace: float = 5.0) -> None:
        """SIGTERM the tool's process group, SIGKILL after ``grace`` seconds (at once when ``grace`` is 0)."""
        if self._popen.poll() is not None:
            return
        if grace <= 0:
            self._signal(signal.SIGKILL)
            return
        self._signal(signal.SIGTERM)
        timer = threading.Timer(grace, self._kill_if_running)
        timer.daemon = True
        timer.start()

    def wait(self, timeout: float | None = None) -> int | None:
        if not self._done.wait(timeout):
            return None
        return self._popen.returncode

    # -- inside --------------------------------------------------------------------------------------
    def _read(self) -> None:
        stdout = self._popen.stdout
        for line in stdout:
            try:
                event = json.loads(line)
            except ValueError:
                event = None
            if isinstance(event, dict):
                self._call(self._on_event, event)
            else:
                self._call(self._on_line, line)
        stdout.close()
        if self._stderr is not None:
            self._stderr.join()  # the log is whole when on_exit runs
        self._report_exit()

    def _copy_stderr(self, log: Path) -> None:
        try:
            self._copy_stderr_lines(log)
        except OSError as exc:
            # The log's disk is full: the rest of stderr is dropped, but read, or the tool would block writing.
            logging.getLogger(__name__).warning("cannot write %s: %s", log, exc)
            for _ in self._popen.stderr:
                pass
            self._popen.stderr.close()

    def _copy_stderr_lines(self, log: Path) -> None:
        folded, no_gpu = False, False
        with open(log, "a") as log_file:
            for line in self._popen.stderr:
                if STARTUP_NOTICE.match(line):
                    if not folded:
                        log_file.write("TensorFlow started (its start-up notices are left out of this log)\n")
                        folded = True
                    if not no_gpu and NO_GPU_NOTICE.search(line):
                        log_file.write("TensorFlow found no usable GPU (no CUDA driver): it runs on the CPU\n")
                        no_gpu = True
                else:
                    log_file.write(line)
                log_file.flush()
        self._popen.stderr.close()

    def _reap(self, report: bool) -> None:
        # When the tool itself ends, whatever it started must end too: leftover workers would keep its stdout
        # open (its end would never be seen) and hold memory nobody accounts for.
        self._popen.wait()
        self._signal(signal.SIGKILL)
        if report:
            self._report_exit()

    def _report_exit(self) -> None:
        try:
            self._call(self._on_exit, self._popen.wait())
        finally:
            self._done.set()

    def _call(self, callback: Callable | None, value) -> None:
        if callback is None:
            return
        try:
            callback(value)
        except Exception:  # a failing listener must not stop the reading: the exit would never be reported
            log.exception("a listener of tool %s failed", self._popen.pid)

    def _kill_if_running(self) -> None:
        if self._popen.poll() is None:
            self._signal(signal.SIGKILL)

    def _signal(self, sig: signal.Signals) -> None:
        try:
            os.killpg(self._popen.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass  # the group is gone already
