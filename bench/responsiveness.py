"""How the web server answers while a dataset is being created, and how fast it starts.

    .venv/bin/python bench/responsiveness.py

Starts ``python -m digits`` on a temporary jobs directory, measures the time until ``/index.json``
answers, then creates a dataset of 2,000 color 256x256 JPEGs squashed to 224x224 and, while it is
built, requests ``/index.json`` (the home page's JSON) and the dataset's JSON in a loop. Prints
p50/p95/max latency idle and during the creation. Target: p95 under 200 ms during the creation.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from sample_images import write_color_folder  # noqa: E402
from server import LiveServer  # noqa: E402


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return (
        f"n={len(ordered)} p50={statistics.median(ordered) * 1000:.1f} ms "
        f"p95={p95 * 1000:.1f} ms max={ordered[-1] * 1000:.1f} ms"
    )


def timed_get(session: requests.Session, url: str) -> float:
    start = time.perf_counter()
    session.get(url).raise_for_status()
    return time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        folder = write_color_folder(tmp_path / "images", classes=4, per_class=500)
        (tmp_path / "jobs").mkdir()
        server = LiveServer(tmp_path / "jobs").start()
        try:
            print(f"server answered /index.json {server.startup_seconds:.2f} s after start")
            tf_loaded = "tensorflow" in Path(f"/proc/{server.process.pid}/maps").read_text()
            print(f"web process has loaded TensorFlow: {tf_loaded}")
            session = server.session()
            idle = [timed_get(session, server.url + "/index.json") for _ in range(100)]
            print(f"idle    /index.json: {percentiles(idle)}")
            fields = dict(method="folder", folder_train=str(folder), resize_channels="3", resize_width="224",
                          resize_height="224", resize_mode="squash", encoding="jpg", dataset_name="bench")  # fmt: skip
            job_id = session.post(server.url + "/datasets/images/classification.json", data=fields).json()["id"]
            busy, busy_job = [], []
            started = time.perf_counter()
            while session.get(f"{server.url}/datasets/{job_id}/status").json()["status"] not in ("Done", "Error"):
                busy.append(timed_get(session, server.url + "/index.json"))
                busy_job.append(timed_get(session, f"{server.url}/datasets/{job_id}.json"))
                time.sleep(0.02)
            print(f"dataset of 2,000 images built in {time.perf_counter() - started:.1f} s")
            print(f"busy    /index.json: {percentiles(busy)}")
            print(f"busy    /datasets/<id>.json: {percentiles(busy_job)}")
            p95 = sorted(busy)[int(0.95 * len(busy))]
            print(f"target p95 < 200 ms during creation: {'met' if p95 < 0.2 else 'NOT met'}")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
