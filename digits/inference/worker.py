"""The web process's side of the warm inference worker (``digits.tools.tensorflow.inference_worker``).

The worker is started on the first request and kept: a second request to the same model pays neither
TensorFlow's start-up nor the model's loading. Requests are answered in order; one that takes longer than
its timeout kills the worker (the next request starts a fresh one), so a stuck model never hangs the server.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

from digits.inference.spec import ModelSpec
from digits.tools.protocol import PARENT_PID_ENV


class InferenceError(RuntimeError):
    """Inference failed as a whole; ``user_line`` is the line of the network source when it is to blame."""

    def __init__(self, message: str, user_line: int | None = None):
        super().__init__(message)
        self.user_line = user_line


class InferenceWorker:
    """One warm worker process, started on demand, restarted when it dies or hangs."""

    def __init__(self, log_path: Path, max_models: int = 4, max_memory_mb: int = 4096, python: str = sys.executable):
        self.log_path = log_path
        self.command = [
            python, "-m", "digits.tools.tensorflow.inference_worker",
            "--max-models", str(max_models), "--max-memory-mb", str(max_memory_mb),
        ]  # fmt: skip
        self._lock = threading.Lock()  # one request at a time: the worker answers in order
        self._process: subprocess.Popen | None = None
        self._replies: queue.Queue = queue.Queue()
        self._ids = itertools.count(1)

    def request(self, spec: ModelSpec, paths: list[str], *, top: int = 5, layers: bool = False,
                image: bool = False, inputs: bool = False, timeout: float = 300.0) -> dict:  # fmt: skip
        """Classify ``paths`` with the model of ``spec``; returns the worker's reply (see its module)."""
        payload = {"spec": spec.to_dict(), "paths": paths, "top": top, "layers": layers, "image": image,
                   "inputs": inputs}  # fmt: skip
        with self._lock:
            process = self._ensure_started()
            payload["id"] = request_id = next(self._ids)
            try:
                process.stdin.write(json.dumps(payload) + "\n")
                process.stdin.flush()
            except (BrokenPipeError, OSError):
                self._stop()
                raise InferenceError("the inference worker stopped; try again") from None
            try:
                reply = self._replies.get(timeout=timeout)
            except queue.Empty:
                self._stop()
                raise InferenceError(f"inference did not finish in {timeout:g} s; the worker was restarted") from None
        if reply is None:
            raise InferenceError(f"the inference worker died; see {self.log_path}")
        if reply.get("id") != request_id:
            raise InferenceError("the inference worker answered out of order")
        if "error" in reply:
            raise InferenceError(reply["error"], reply.get("user_line"))
        return reply

    def _ensure_started(self) -> subprocess.Popen:
        if self._process is not None and self._process.poll() is None:
            return self._process
        self._replies = queue.Queue()
        log = open(self.log_path, "a")  # noqa: SIM115 - kept open by the child
        try:
            self._process = subprocess.Popen(
                self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", PARENT_PID_ENV: str(os.getpid())},
                start_new_session=True,
            )  # fmt: skip
        finally:
            log.close()
        threading.Thread(target=_read_replies, args=(self._process.stdout, self._replies), daemon=True).start()
        return self._process

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def shutdown(self) -> None:
        with self._lock:
            self._stop()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None and self._process.poll() is None else None


def _read_replies(stream: IO[str], replies: queue.Queue) -> None:
    for line in stream:
        try:
            replies.put(json.loads(line))
        except json.JSONDecodeError:
            continue
    replies.put(None)  # the worker is gone
