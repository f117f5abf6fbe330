"""TensorBoard on demand: one child process per set of jobs, reached through the app.

``TensorBoardManager`` runs one TensorBoard per set of jobs (``key_of(job_ids)``), each a child process
bound to 127.0.0.1 on a free port and served under ``<url prefix>/tensorboard/<key>`` (the app proxies
that path to it). At most ``max_servers`` run at once; one unused for ``idle_seconds`` is stopped, and none
outlives the server. Nothing here imports Flask or TensorFlow.

``python -m digits.tensorboard ARGS`` is ``tensorboard ARGS`` that ends when the process that started it
ends; the manager starts TensorBoard that way.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from digits.processes import ToolProcess, start_tool
from digits.tools.protocol import die_with_parent, exit_when_orphaned

START_TIMEOUT = 60.0
# A server that answered a request this recently is in use (an open TensorBoard tab reloads every 30 s):
# it is never stopped to make room for another.
BUSY_SECONDS = 60.0
LOG_TAIL_LINES = 15
# TensorBoard needs no GPU (it must not take memory from training); TensorFlow's C++ notices would bury errors.
CHILD_ENV = {"CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3"}
# Lines TensorFlow's C++ side logs on import whatever TF_CPP_MIN_LOG_LEVEL says: noise in an error message.
NOTICE = re.compile(r"^(?:[IW]\d{4} |WARNING: All log messages before absl::InitializeLog)")


class TensorBoardError(Exception):
    """A TensorBoard that cannot be started or reached; the message says why and what to do."""


def key_of(job_ids: Iterable[str]) -> str:
    """The same short key for the same set of jobs, whatever their order: two clicks share one server."""
    joined = ",".join(sorted(set(job_ids)))
    return hashlib.sha1(joined.encode()).hexdigest()[:12]


@dataclass
class TensorBoardServer:
    """One running TensorBoard: ``runs`` maps a run name to its summaries folder."""

    key: str
    runs: dict[str, str]
    port: int
    path_prefix: str
    process: ToolProcess
    log_path: Path
    last_used: float = field(default_factory=time.monotonic)
    ready: bool = False

    @property
    def url(self) -> str:
        """Where TensorBoard answers, on this machine."""
        return f"http://127.0.0.1:{self.port}{self.path_prefix}/"

    def alive(self) -> bool:
        return self.process.returncode is None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last lines TensorBoard wrote, without TensorFlow's informational notices."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join([line for line in text.strip().splitlines() if not NOTICE.match(line)][-lines:])


class TensorBoardManager:
    """Starts TensorBoard servers on demand, reuses them per key, stops idle ones, and all of them on shutdown.

    ``url_prefix`` is the app's (``/digits``): TensorBoard's own links must include it. ``log_dir`` holds each
    server's output (``<key>.log``), whose tail error messages quote.
    """

    def __init__(
        self,
        max_servers: int = 4,
        idle_seconds: float = 600,
        url_prefix: str = "",
        log_dir: Path | None = None,
        python: str = sys.executable,
        start_timeout: float = START_TIMEOUT,
    ):
        self.max_servers = max_servers
        self.idle_seconds = idle_seconds
        self.url_prefix = url_prefix.rstrip("/")
        self.log_dir = Path(log_dir or tempfile.mkdtemp(prefix="digits-tensorboard-"))
        self.python = python
        self.start_timeout = start_timeout
        self._servers: dict[str, TensorBoardServer] = {}
        self._known: dict[str, dict[str, str]] = {}  # every key opened, so a stopped server can start again
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._reaper: threading.Thread | None = None
        # TensorBoard dies with the thread that started it (PR_SET_PDEATHSIG), so one long-lived thread
        # starts them all: a request's thread may end long before the server should.
        self._spawner = ThreadPoolExecutor(1, thread_name_prefix="tensorboard-spawn")

    # -- public --------------------------------------------------------------------------------------
    def open(self, key: str, runs: dict[str, str]) -> TensorBoardServer:
        """The running server for ``key`` (started with ``runs`` if it is not running), once it answers.

        Raises :class:`TensorBoardError` when ``max_servers`` are in use, or TensorBoard fails to start
        (the message quotes its output).
        """
        if self._stopping.is_set():
            raise TensorBoardError("the server is shutting down")
        with self._lock:
            self._known[key] = dict(runs)
            server = self._servers.get(key)
            if server is not None and not server.alive():
                self._servers.pop(key)
                server = None
            if server is None:
                self._make_room()
                server = self._start(key, runs)
                self._servers[key] = server
            server.last_used = time.monotonic()
            if self._reaper is None:
                self._reaper = threading.Thread(target=self._reap_idle, name="tensorboard-reaper", daemon=True)
                self._reaper.start()
        try:
            self._wait_until_ready(server)
        except TensorBoardError:
            self.stop(key, server)
            raise
        server.last_used = time.monotonic()
        return server

    def find(self, key: str) -> TensorBoardServer | None:
        """The server for ``key``, marked as used; started again if it was opened before and has stopped since.

        None for a key never opened (since this server started). Raises :class:`TensorBoardError` as ``open``.
        """
        with self._lock:
            server = self._servers.get(key)
            runs = self._known.get(key)
            if server is not None and server.alive() and server.ready:
                server.last_used = time.monotonic()
                return server
        if runs is None:
            return None
        return self.open(key, runs)

    def servers(self) -> list[TensorBoardServer]:
        with self._lock:
            return list(self._servers.values())

    def stop(self, key: str, server: TensorBoardServer | None = None) -> None:
        """Stop the server of ``key`` (only if it is still ``server``, when given)."""
        with self._lock:
            current = self._servers.get(key)
            if current is None or (server is not None and current is not server):
                current = server
            else:
                self._servers.pop(key)
        if current is not None:
            _stop_processes([current.process])

    def shutdown(self) -> None:
        """Stop every TensorBoard; no more start after this."""
        self._stopping.set()
        with self._lock:
            servers = list(self._servers.values())
            self._servers.clear()
        _stop_processes([s.process for s in servers])
        self._spawner.shutdown(wait=False)

    # -- inside --------------------------------------------------------------------------------------
    def _make_room(self) -> None:
        """Stop the least recently used idle server when all are taken; refuse when every one is in use."""
        if len(self._servers) < self.max_servers:
            return
        now = time.monotonic()
        idle = [s for s in self._servers.values() if now - s.last_used > BUSY_SECONDS or not s.alive()]
        if not idle:
            raise TensorBoardError(
                f"{len(self._servers)} TensorBoards are open, the most this server runs at once "
                "(DIGITS_TENSORBOARD_MAX). Close a TensorBoard tab and try again in a minute."
            )
        oldest = min(idle, key=lambda s: s.last_used)
        self._servers.pop(oldest.key)
        _stop_processes([oldest.process], wait=False)

    def _start(self, key: str, runs: dict[str, str]) -> TensorBoardServer:
        for name, path in runs.items():
            if "," in path or "," in name:
                raise TensorBoardError(f"TensorBoard cannot read {path}: its path has a comma")
        used = {s.port for s in self._servers.values()}
        port = free_port(avoid=used)
        path_prefix = f"{self.url_prefix}/tensorboard/{key}"
        spec = ",".join(f"{name}:{path}" for name, path in runs.items())
        args = ["--logdir_spec", spec, "--host", "127.0.0.1", "--port", str(port), "--path_prefix", path_prefix,
                "--load_fast", "false"]  # fmt: skip
        command = [self.python, "-m", "digits.tensorboard", *args]
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{key}.log"
        # By hand, the same server is: tensorboard ARGS.
        log_path.write_text(f"$ {shlex.join(['tensorboard', *args])}\n")
        try:
            process = self._spawner.submit(
                start_tool, command, log=log_path, env=CHILD_ENV, stdout_to_log=True
            ).result()
        except (OSError, RuntimeError) as exc:
            raise TensorBoardError(f"could not start TensorBoard: {exc}") from exc
        return TensorBoardServer(key, dict(runs), port, path_prefix, process, log_path)

    def _wait_until_ready(self, server: TensorBoardServer) -> None:
        deadline = time.monotonic() + self.start_timeout
        while not server.ready:
            if not server.alive():
                code = server.process.returncode
                raise TensorBoardError(f"TensorBoard stopped (exit status {code}) while starting: {server.log_tail()}")
            if time.monotonic() > deadline:
                raise TensorBoardError(
                    f"TensorBoard did not answer within {self.start_timeout:g} s: {server.log_tail()}"
                )
            try:
                socket.create_connection(("127.0.0.1", server.port), timeout=0.5).close()
                server.ready = True
            except OSError:
                time.sleep(0.1)

    def _reap_idle(self) -> None:
        interval = max(0.2, min(30.0, self.idle_seconds / 4))
        while not self._stopping.wait(interval):
            now = time.monotonic()
            with self._lock:
                done = [
                    s for s in self._servers.values()
                    if not s.alive() or (s.ready and now - s.last_used > self.idle_seconds)
                ]  # fmt: skip
                for server in done:
                    self._servers.pop(server.key)
            _stop_processes([s.process for s in done])


def free_port(avoid: Iterable[int] = ()) -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now (and not in ``avoid``)."""
    avoid = set(avoid)
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in avoid:
            return port


def _stop_processes(processes: list[ToolProcess], grace: float = 5.0, wait: bool = True) -> None:
    """SIGTERM each process group, then SIGKILL what is left after ``grace`` seconds; with ``wait``, until gone."""
    for process in processes:
        process.terminate(grace)
    if wait:
        for process in processes:
            process.wait()


# -- python -m digits.tensorboard ----------------------------------------------------------------------
def serve(argv: list[str]) -> None:
    """Run TensorBoard with ``argv`` in this process, ending it when the process that started it ends."""
    import runpy

    die_with_parent()
    # Also for where PR_SET_PDEATHSIG does not exist, and for a parent that died before it was set.
    exit_when_orphaned()
    sys.argv = ["tensorboard", *argv]
    runpy.run_module("tensorboard.main", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    serve(sys.argv[1:])
