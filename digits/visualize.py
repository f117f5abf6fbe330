"""The Visualize button: a network built in a child process for given input shapes, described layer by layer.

``visualize_network`` runs the framework's visualize tool (``digits.tools.tensorflow.visualize``,
``digits.tools.torch.visualize``) and returns its result, or raises :class:`NetworkBuildError` with the user's
line. Nothing here imports Flask, TensorFlow or PyTorch.
"""

from __future__ import annotations

import sys
import tempfile
from contextlib import nullcontext
from pathlib import Path

from digits.busy import Slots
from digits.processes import run_to_end

VISUALIZE_TIMEOUT = 60.0
LOG_TAIL_LINES = 15
# Each framework's tool, answering the same JSON (the PyTorch one states its NCHW layout).
TOOLS = {"tensorflow": "digits.tools.tensorflow.visualize", "torch": "digits.tools.torch.visualize"}
# A network's description needs no GPU (it must not take memory from training); TensorFlow's C++ notices
# would bury the user's error.
CHILD_ENV = {"CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3"}


class NetworkBuildError(Exception):
    """A network that did not build: ``message``, and the user's ``line`` and its source when known."""

    def __init__(self, message: str, line: int | None = None, source_line: str | None = None, traceback: str = ""):
        super().__init__(message)
        self.line = line
        self.source_line = source_line
        self.traceback = traceback

    def as_dict(self) -> dict:
        return {"message": str(self), "user_line": self.line, "user_source_line": self.source_line,
                "traceback": self.traceback}  # fmt: skip


def parse_shape(text: str) -> list[int]:
    """``"28,28,1"`` (or ``28x28x1``) -> ``[28, 28, 1]``; ValueError for anything but three positive integers."""
    parts = [p.strip() for p in text.lower().replace("x", ",").split(",") if p.strip()]
    try:
        shape = [int(p) for p in parts]
    except ValueError:
        shape = []
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"the input shape must be three positive integers H,W,C (e.g. 28,28,1), not {text!r}")
    return shape


def check_syntax(source: str) -> None:
    """Raise :class:`NetworkBuildError` for a syntax error in ``source``: compiling runs nothing and needs no
    child process, so the answer comes at once."""
    try:
        compile(source, "network.py", "exec")
    except SyntaxError as exc:
        line = (exc.text or "").rstrip("\n") or None
        raise NetworkBuildError(f"SyntaxError: {exc.msg} (network.py, line {exc.lineno})", exc.lineno, line) from None


def visualize_network(
    source: str,
    shape: list[int],
    nclasses: int | None,
    timeout: float = VISUALIZE_TIMEOUT,
    python: str = sys.executable,
    slots: Slots | None = None,
    framework: str = "tensorflow",
) -> dict:
    """Build the network ``source`` of ``framework`` (a key of :data:`TOOLS`) in a child process for ``shape``
    [H, W, C] images; returns its description.

    The description is the framework's tool's result: ``{"layers": [...], "total_params": N,
    ...}``. Raises :class:`NetworkBuildError` when the network does not build, or not within ``timeout`` seconds
    (its process group is killed then). With ``slots``, one of them is held while the child runs: when all are
    taken, :class:`~digits.busy.Busy` is raised at once.
    """
    check_syntax(source)
    with slots.take() if slots else nullcontext():
        with tempfile.TemporaryDirectory(prefix="digits-visualize-") as folder:
            network = Path(folder) / "network.py"
            network.write_text(source)
            command = [python, "-m", TOOLS[framework], "--network", str(network),
                       "--shape", ",".join(map(str, shape))]  # fmt: skip
            if nclasses is not None:
                command += ["--nclasses", str(nclasses)]
            log = Path(folder) / "visualize.log"
            returncode, events = run_to_end(command, log=log, timeout=timeout, cwd=folder, env=CHILD_ENV)
            if returncode is None:
                raise NetworkBuildError(f"building the network did not finish in {timeout:g} s")
            stderr = log.read_text(errors="replace")
    for event in events:
        if event.get("event") == "result":
            return {k: v for k, v in event.items() if k != "event"}
        if event.get("event") == "error":
            raise NetworkBuildError(
                event.get("message") or "the network did not build",
                event.get("user_line"),
                event.get("user_source_line"),
                event.get("traceback") or "",
            )
    tail = "\n".join(stderr.strip().splitlines()[-LOG_TAIL_LINES:])
    raise NetworkBuildError(f"building the network failed (exit status {returncode})", traceback=tail)
