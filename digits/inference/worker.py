"""The web process's side of the warm inference workers (``digits.tools.inference_worker``).

:class:`InferenceWorker` routes each request by its spec's ``framework`` to a worker process of that framework
(:class:`WorkerProcess`), so a PyTorch model never loads TensorFlow and the reverse. A worker is started on the
first request for its framework and kept: a second request to the same model pays neither the framework's
start-up nor the model's loading. Requests are answered in order; one that takes longer than
its timeout kills the worker (the next request starts a fresh one), so a stuck model never hangs the server.
A request waits at most ``wait`` seconds for the one before it (of the same framework); past that it is
answered "busy" (:class:`Busy`). The web process imports neither framework: it only writes and reads JSON lines.
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
    """Inference failed as a whole; ``user_line`` is the line of the network source when it is to blame;
    ``fixable`` when the model's files are (a snapshot that does not fit its network, another framework's)."""

    def __init__(self, message: str, user_line: int | None = None, fixable: bool = False):
        super().__init__(message)
        self.user_line = user_line
        self.fixable = fixable or user_line is not None


FRAMEWORKS = ("tensorflow", "torch")
WORKER_TOOL = "digits.tools.inference_worker"


class InferenceWorker:
    """The warm workers, one per framework, each started on its framework's first request.

    ``log_path`` is the TensorFlow worker's log; another framework's worker logs beside it
    (``inference-worker-torch.log``). ``max_models`` and ``max_memory_mb`` bound each worker.
    """

    def __init__(self, log_path: Path, max_models: int = 4, max_memory_mb: int = 4096, python: str = sys.executable,
                 wait: float = 30.0):  # fmt: skip
        self.log_path = log_path
        self.workers = {
            framework: WorkerProcess(
                framework, worker_log(log_path, framework), max_models, max_memory_mb, python, wait
            )  # fmt: skip
            for framework in FRAMEWORKS
        }

    def request(self, spec: ModelSpec, paths: list[str], **options) -> dict:
        """Classify ``paths`` with the model of ``spec`` in the worker of its framework (see
        :meth:`WorkerProcess.request`); InferenceError for a framework this server does not have."""
        worker = self.workers.get(spec.framework)
        if worker is None:
            raise InferenceError(
                f"the model is for {spec.framework!r}; this server runs {', '.join(FRAMEWORKS)} models"
            )
        return worker.request(spec, paths, **options)

    def shutdown(self) -> None:
        for worker in self.workers.values():
            worker.shutdown()


def worker_log(log_path: Path, framework: str) -> Path:
    """The log of ``framework``'s worker: ``log_path`` for TensorFlow (as before there were two), else beside it."""
    return (
        log_path if framework == "tensorflow" else log_path.with_name(f"{log_path.stem}-{framework}{log_path.suffix}")
    )


class WorkerProcess:
    """One warm worker process of one framework, started on demand, restarted when it dies or hangs."""

    def __init__(self, framework: str, log_path: Path, max_models: int = 4, max_memory_mb: int = 4096,
                 python: str = sys.executable, wait: float = 30.0):  # fmt: skip
        self.framework = framework
        self.log_path = log_path
        self.wait = wait
        self.command = [
            python, "-m", WORKER_TOOL, "--framework", framework,
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
            raise Busy(f"the {self.framework} inference worker is busy with another request (waited {self.wait:g} s, "
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
            raise InferenceError(reply["error"], reply.get("user_line"), bool(reply.get("fixable")))
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
