"""The web process's side of the warm inference worker (``digits.tools.tensorflow.inference_worker``).

The worker is started on the first request and kept: a second request to the same model pays neither
TensorFlow's start-up nor the model's loading. Requests are answered in order; one that takes longer than
its timeout kills the worker (the next request starts a fresh one), so a stuck model never hangs the server.
A request waits at most ``wait`` seconds for the one before it; past that it is answered "busy" (:class:`Busy`).
"""

from __future__ import annotations

import itertools
import json
import queue
import sys
import threading
from pathlib import Path

from digits.busy import Busy
from digits.inference.spec import ModelSpec
from digits.processes import RunningTool, start_tool


class InferenceError(RuntimeError):
    """Inference failed as a whole; ``user_line`` is the line of the network source when it is to blame."""

    def __init__(self, message: str, user_line: int | None = None):
        super().__init__(message)
        self.user_line = user_line


class InferenceWorker:
    """One warm worker process, started on demand, restarted when it dies or hangs."""

    def __init__(self, log_path: Path, max_models: int = 4, max_memory_mb: int = 4096, python: str = sys.executable,
                 wait: float = 30.0):  # fmt: skip
        self.log_path = log_path
        self.wait = wait
        self.command = [
            python, "-m", "digits.tools.tensorflow.inference_worker",
            "--max-models", str(max_models), "--max-memory-mb", str(max_memory_mb),
        ]  # fmt: skip
        self._lock = threading.Lock()  # one request at a time: the worker answers in order
        self._process: RunningTool | None = None
        self._replies: queue.Queue = queue.Queue()
        self._ids = itertools.count(1)

    def request(self, spec: ModelSpec, paths: list[str], *, top: int = 5, layers: bool = False,
                image: bool = False, inputs: bool = False, timeout: float = 300.0) -> dict:  # fmt: skip
        """Classify ``paths`` with the model of ``spec``; returns the worker's reply (see its module).

        Raises :class:`Busy` when another request holds the worker for longer than ``wait`` seconds.
        """
        payload = {"spec": spec.to_dict(), "paths": paths, "top": top, "layers": layers, "image": image,
                   "inputs": inputs}  # fmt: skip
        if not self._lock.acquire(timeout=self.wait):
            raise Busy(f"the inference worker is busy with another request (waited {self.wait:g} s, "
                       "DIGITS_INFERENCE_WAIT); try again shortly", retry_after=max(1, round(self.wait)))  # fmt: skip
        try:
            process = self._ensure_started()
            payload["id"] = request_id = next(self._ids)
            try:
                process.write(json.dumps(payload))
            except (BrokenPipeError, OSError):
                self._stop()
                raise InferenceError("the inference worker stopped; try again") from None
            try:
                reply = self._replies.get(timeout=timeout)
            except queue.Empty:
                self._stop()
                raise InferenceError(f"inference did not finish in {timeout:g} s; the worker was restarted") from None
        finally:
            self._lock.release()
        if reply is None:
            raise InferenceError(f"the inference worker died; see {self.log_path}")
        if reply.get("id") != request_id:
            raise InferenceError("the inference worker answered out of order")
        if "error" in reply:
            raise InferenceError(reply["error"], reply.get("user_line"))
        return reply

    def _ensure_started(self) -> RunningTool:
        if self._process is not None and self._process.returncode is None:
            return self._process
        # A queue per worker: a dead worker's last word (None) must not answer its successor's request.
        replies = self._replies = queue.Queue()
        self._process = start_tool(
            self.command, log=self.log_path, env={"TF_CPP_MIN_LOG_LEVEL": "2"}, stdin=True,
            on_event=replies.put, on_exit=lambda returncode: replies.put(None),  # None: the worker is gone
        )  # fmt: skip
        return self._process

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            process.terminate(grace=0)
            process.wait()

    def shutdown(self) -> None:
        with self._lock:
            self._stop()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None and self._process.returncode is None else None
