"""The warm inference worker: a long-lived child of the server that keeps recently used models loaded.

    python -m digits.tools.inference_worker --framework tensorflow|torch [--max-models 4] [--max-memory-mb 4096]

A worker serves the models of one framework (the server starts one per framework it is asked for), and
imports only that framework: a PyTorch worker never loads TensorFlow.

Reads one JSON request per line on stdin and answers one JSON line on stdout, in order:

- ``{"id": 1, "spec": {...ModelSpec...}, "paths": ["a.png"], "top": 5, "layers": false, "image": false}``
  -> ``{"id": 1, "results": [{"name", "predictions": [[label, percent], ...]} or {"name", "error"}],
  "parameters": N, "load_seconds": s}``; with ``layers`` the first image's layer visualizations
  (``"layers": [...]``), with ``image`` each image as the network saw it (``"image"``: base64 PNG), with
  ``inputs`` the input arrays (``"input"``, for view extensions).
- a failure of the whole request -> ``{"id": 1, "error": "...", "user_line": N, "fixable": true}``; ``fixable``
  when the model is to blame (its source, a snapshot that does not fit it, a spec of another framework than
  the worker's), not the worker.

Models are kept least recently used first; loading one evicts the oldest when more than ``--max-models``
are loaded or the process's memory exceeds ``--max-memory-mb``. The worker exits when stdin closes
or the server that started it (``DIGITS_PARENT_PID``) is gone.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections import OrderedDict
from collections.abc import Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import psutil  # noqa: E402

from digits.inference.spec import ModelSpec  # noqa: E402
from digits.tools.predicting import (  # noqa: E402
    FRAMEWORKS,
    ModelMismatch,
    classify,
    framework_modules,
    freeze_loaded,
    load_batch,
    load_predictor,
    png_base64,
)
from digits.tools.protocol import run_tool  # noqa: E402


class ModelCache:
    """Loaded predictors, least recently used first, bounded in number and in process memory."""

    def __init__(self, framework: str, max_models: int, max_memory_mb: int):
        self.framework = framework
        self.max_models = max(1, max_models)
        self.max_bytes = max_memory_mb * 1024 * 1024
        self.loaded: OrderedDict[str, object] = OrderedDict()
        self.process = psutil.Process()

    def get(self, spec: ModelSpec) -> tuple[object, float]:
        """The predictor of ``spec`` and the seconds spent loading it (0 when it was loaded already).

        ModelMismatch for a spec of another framework than this worker's."""
        if spec.framework != self.framework:
            raise ModelMismatch(f"a {spec.framework} model was sent to the {self.framework} inference worker")
        key = spec.key()
        if key in self.loaded:
            self.loaded.move_to_end(key)
            return self.loaded[key], 0.0
        started = time.monotonic()
        predictor = load_predictor(spec)
        self.loaded[key] = predictor
        while len(self.loaded) > 1 and (
            len(self.loaded) > self.max_models or self.process.memory_info().rss > self.max_bytes
        ):
            _, oldest = self.loaded.popitem(last=False)
            oldest.close()
        freeze_loaded()
        return predictor, time.monotonic() - started


def answer(cache: ModelCache, request: dict) -> dict:
    spec = ModelSpec.from_dict(request["spec"])
    predictor, load_seconds = cache.get(spec)
    items = load_batch(spec, request.get("paths", []))
    results = classify(predictor, items, top=int(request.get("top", 5)), inputs=bool(request.get("inputs")))
    reply = {"results": results, "parameters": predictor.parameter_count(), "load_seconds": round(load_seconds, 3)}
    if request.get("image"):
        for item, result in zip(items, results, strict=True):
            if item.pixels is not None:
                result["image"] = png_base64(item.pixels)
    if request.get("layers"):
        first = next((item for item in items if item.pixels is not None), None)
        reply["layers"] = predictor.layers(first.pixels) if first is not None else []
    return reply


def serve(cache: ModelCache, requests, replies) -> None:
    _, network_error = framework_modules(cache.framework)
    for line in requests:
        if not line.strip():
            continue
        request = json.loads(line)
        try:
            reply = answer(cache, request)
        except (network_error, ModelMismatch) as exc:
            reply = {"error": str(exc), "user_line": getattr(exc, "line", None), "fixable": True}
        except Exception as exc:  # noqa: BLE001 - one bad request must not take the worker down
            traceback.print_exc()
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        replies.write(json.dumps({"id": request.get("id"), **reply}) + "\n")
        replies.flush()


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m digits.tools.inference_worker", description=__doc__)
    parser.add_argument("--framework", choices=sorted(FRAMEWORKS), default="tensorflow")
    parser.add_argument("--max-models", type=int, default=4)
    parser.add_argument("--max-memory-mb", type=int, default=4096)
    args = parser.parse_args(argv)
    # Replies get a descriptor of their own; whatever else writes to stdout (a print in a network) goes to
    # stderr, the worker's log, instead of into the protocol.
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    serve(ModelCache(args.framework, args.max_models, args.max_memory_mb), sys.stdin, replies)
    return 0


if __name__ == "__main__":
    run_tool(main)  # exits when the server that started it is gone
