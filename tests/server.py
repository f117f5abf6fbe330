"""Start the real server (``python -m digits``) in a subprocess for tests that need a live one."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from helpers import wait_for_status as wait_for_status  # tests/browser import it from here


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """``python -m digits -p PORT`` on a jobs directory; ``url`` is its base URL."""

    def __init__(self, jobs_dir: Path, port: int | None = None, env: dict | None = None):
        self.jobs_dir = jobs_dir
        self.port = port or free_port()
        # Data roots as the test apps have them (conftest.py): the tests' folders are under the temporary directory.
        roots = os.pathsep.join([str(jobs_dir), tempfile.gettempdir(), os.getcwd()])
        # DIGITS' single-user mode (a name logs in) unless a test is about accounts.
        self.env = {**os.environ, "DIGITS_JOBS_DIR": str(jobs_dir), "DIGITS_AUTH": "none", "DIGITS_DATA_ROOTS": roots,
                    **(env or {})}  # fmt: skip
        self.prefix = self.env.get("DIGITS_URL_PREFIX", "").rstrip("/")
        self.url = f"http://127.0.0.1:{self.port}{self.prefix}"
        self.process: subprocess.Popen | None = None
        self.startup_seconds = 0.0

    def start(self, timeout: float = 30.0) -> LiveServer:
        started = time.monotonic()
        log = open(self.jobs_dir.parent / f"server-{self.port}.log", "a")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "digits", "-p", str(self.port)], env=self.env, stdout=log, stderr=log
        )
        while True:
            try:
                if requests.get(self.url + "/login", timeout=1).ok:
                    break
            except requests.RequestException:  # refused while starting, or slow to answer on a busy machine
                pass
            if self.process.poll() is not None or time.monotonic() - started > timeout:
                raise RuntimeError(f"server did not start: see {log.name}")
            time.sleep(0.05)
        self.startup_seconds = time.monotonic() - started
        return self

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def session(self, username: str = "fred") -> requests.Session:
        session = requests.Session()
        assert session.post(self.url + "/login", data={"username": username}).ok
        return session
