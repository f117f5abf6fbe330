"""Inference through the server against the way DIGITS did it, and Classify Many against a direct call.

    .venv/bin/python bench/inference.py [--requests 200] [--many 2000]

Starts ``python -m digits`` on a temporary jobs directory, builds a dataset of scikit-learn's digits
(28x28 gray PNGs) and trains the standard LeNet for 2 epochs through the REST API, then, in one run:

- ``classify_one.json``: the first request's time (the warm worker starts and loads the model), then
  ``--requests`` requests (p50, p95), against DIGITS' way: a fresh process per request that starts,
  loads the model and predicts one image (median of 5). Target: warm p50 at most 30 ms.
- ``classify_many.json`` of ``--many`` images (one request, in the warm worker), against calling the
  loaded model directly in this process on the same image files (read, resize, predict in batches of 128),
  and against predicting the same images already in memory. Target: at least 0.7x the direct call.
  The request and the direct call take turns ``--repeats`` times; the ratio is the median of each turn's
  (a turn's two runs share the machine's load of the moment; on a shared machine one sample can be off by a third).
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))
from sample_images import write_digits_folder  # noqa: E402
from server import LiveServer  # noqa: E402

FRESH_PROCESS = """
import sys, json
from digits.inference.spec import ModelSpec
from digits.tools.tensorflow.predictor import Predictor, classify, load_batch
spec = ModelSpec.from_dict(json.loads(sys.argv[1]))
print(classify(Predictor(spec), load_batch(spec, [sys.argv[2]]))[0]["predictions"][0])
"""


def wait_done(session, url: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while (status := session.get(url).json())["status"] != "Done":
        if status["status"] in ("Error", "Aborted") or time.monotonic() > deadline:
            raise RuntimeError(f"{url}: {status}")
        time.sleep(0.3)


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--many", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        images = write_digits_folder(root / "digits")
        (root / "jobs").mkdir()
        server = LiveServer(root / "jobs", env={"DIGITS_INFERENCE_SYNC_LIMIT": str(args.many)}).start()
        try:
            session = server.session()
            fields = dict(method="folder", folder_train=str(images), resize_channels="1", resize_width="28",
                          resize_height="28", folder_pct_val="10", dataset_name="digits")  # fmt: skip
            dataset = session.post(server.url + "/datasets/images/classification.json", data=fields).json()["id"]
            wait_done(session, f"{server.url}/datasets/{dataset}/status")
            fields = dict(method="standard", standard_networks="lenet", train_epochs="2", dataset=dataset,
                          model_name="lenet", batch_size="64")  # fmt: skip
            model = session.post(server.url + "/models/images/classification.json", data=fields).json()["id"]
            wait_done(session, f"{server.url}/models/{model}/status")
            paths = sorted(str(p) for p in images.glob("*/*.png"))
            one = Path(paths[0]).read_bytes()
            url = server.url + "/models/images/classification/classify_one.json"

            def classify_one() -> float:
                started = time.perf_counter()
                answer = session.post(url, data={"job_id": model}, files={"image_file": ("a.png", io.BytesIO(one))})
                answer.raise_for_status()
                return time.perf_counter() - started

            first = classify_one()
            warm = [classify_one() for _ in range(args.requests)]
            spec = session.get(f"{server.url}/models/{model}.json").json()
            fresh = fresh_process_times(root / "jobs", model, paths[0])
            p50 = statistics.median(warm)
            print(f"classify_one.json: first {first * 1000:.0f} ms (starts the worker, loads the model)")
            print(f"classify_one.json warm, {args.requests} requests: p50 {p50 * 1000:.1f} ms, "
                  f"p95 {percentile(warm, 0.95) * 1000:.1f} ms")  # fmt: skip
            print(f"DIGITS' way (fresh process: start, load, predict): median {statistics.median(fresh) * 1000:.0f} ms "
                  f"-> warm p50 is {statistics.median(fresh) / p50:.0f}x faster")  # fmt: skip
            print(f"target warm p50 <= 30 ms: {'met' if p50 <= 0.030 else 'NOT met'}")
            del spec

            many = (paths * (args.many // len(paths) + 1))[: args.many]
            listing = "".join(f"{p}\n" for p in many).encode()

            def classify_many() -> float:
                started = time.perf_counter()
                answer = session.post(
                    server.url + "/models/images/classification/classify_many.json",
                    data={"job_id": model}, files={"image_list": ("list.txt", io.BytesIO(listing))},
                )  # fmt: skip
                answer.raise_for_status()
                return args.many / (time.perf_counter() - started)

            direct = DirectCall(root / "jobs", model, many)
            rates = [(classify_many(), direct.from_files()) for _ in range(args.repeats)]
            served = statistics.median(rate for rate, _ in rates)
            direct_files = statistics.median(rate for _, rate in rates)
            ratio = statistics.median(s / d for s, d in rates)
            direct_memory = direct.from_memory()
            print(f"classify_many.json of {args.many} images, {args.repeats} turns with the direct call "
                  f"(served, direct images/s: {', '.join(f'{s:,.0f}/{d:,.0f}' for s, d in rates)})")  # fmt: skip
            print(f"classify_many.json: median {served:,.0f} images/s")
            print(f"direct call in one process, from the files: median {direct_files:,.0f} images/s "
                  f"-> served is {ratio:.2f}x (median of the turns)")  # fmt: skip
            print(f"direct call on images already in memory: {direct_memory:,.0f} images/s "
                  f"-> served is {served / direct_memory:.2f}x")  # fmt: skip
            print(f"target >= 0.7x the direct call: {'met' if ratio >= 0.7 else 'NOT met'}")
        finally:
            server.stop()


def load_spec(jobs_dir: Path, model: str):
    from digits.inference.spec import model_spec
    from digits.jobs import JobStore

    store = JobStore(jobs_dir)
    store.load_all()
    return model_spec(store.get(model), store)


def fresh_process_times(jobs_dir: Path, model: str, image: str, runs: int = 5) -> list[float]:
    import json

    spec = json.dumps(load_spec(jobs_dir, model).to_dict())
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", FRESH_PROCESS, spec, image], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return times


class DirectCall:
    """The model called directly in this process, as a script would: loaded once, then timed on ``paths``."""

    def __init__(self, jobs_dir: Path, model: str, paths: list[str]):
        from digits.tools.tensorflow.predictor import Predictor, classify, load_batch

        self.classify, self.load_batch = classify, load_batch
        self.spec = load_spec(jobs_dir, model)
        self.predictor = Predictor(self.spec)
        self.paths = paths
        classify(self.predictor, load_batch(self.spec, paths[:128]))  # warm up

    def from_files(self) -> float:
        """Images/s reading, resizing and predicting the files."""
        started = time.perf_counter()
        self.classify(self.predictor, self.load_batch(self.spec, self.paths))
        return len(self.paths) / (time.perf_counter() - started)

    def from_memory(self) -> float:
        """Images/s predicting the same images already decoded and stacked."""
        import numpy as np

        batch = np.stack([item.pixels for item in self.load_batch(self.spec, self.paths)])
        started = time.perf_counter()
        for start in range(0, len(batch), 128):
            self.predictor.predict(batch[start : start + 128])
        return len(self.paths) / (time.perf_counter() - started)


if __name__ == "__main__":
    main()
