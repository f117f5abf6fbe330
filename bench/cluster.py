"""The same LeNet training through the Ray backend and through the local scheduler, on this machine.

    .venv/bin/python bench/cluster.py [--epochs 3] [--repeat 1]

Builds a dataset of generated 28x28 digits with a local server, then starts a server ``--repeat`` times each
way, interleaved: ``python -m digits`` as it is, and the same server given ``DIGITS_CLUSTER`` pointing at
Ray's test cluster (one node of one CPU slot, started and stopped here). Each server trains the standard
LeNet twice: the first model posted as soon as the server answers (the Ray server is still connecting to the
cluster then), the next once the first is Done. Each run is watched through the model's JSON every 20 ms.
Prints, best of the runs:

- images/s between the first progress seen and Done (training speed, the tool's start-up left out);
- the time from the POST of the form to the first progress event seen, for the first and the next model.

Targets: the cluster's images/s at least 0.95x the local one; its submit-to-first-progress at most 3 s more.
The machine's load average is printed with the figures: other work on it moves them.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from sample_images import write_digits_folder  # noqa: E402
from server import LiveServer  # noqa: E402

PER_CLASS = 100


def post(session, url: str, path: str, fields: dict) -> str:
    answer = session.post(url + path, data=fields)
    answer.raise_for_status()
    return answer.json()["id"]


def wait_done(session, url: str, path: str, timeout: float = 900) -> dict:
    deadline = time.monotonic() + timeout
    while (data := session.get(url + path).json())["status"] not in ("Done", "Error", "Aborted"):
        if time.monotonic() > deadline:
            raise SystemExit(f"{path} still {data['status']} after {timeout:.0f} s")
        time.sleep(0.2)
    if data["status"] != "Done":
        raise SystemExit(f"{path} ended {data['status']}: {data.get('error')}")
    return data


def train_once(server: LiveServer, dataset_id: str, images: int, epochs: int) -> tuple[float, float]:
    """Train one LeNet; returns (images/s from the first progress to Done, seconds from submit to first progress)."""
    session = server.session()
    fields = dict(method="standard", standard_networks="lenet", framework="tensorflow", train_epochs=str(epochs),
                  model_name="bench", dataset=dataset_id, random_seed="1", select_gpu_count="0")  # fmt: skip
    submitted = time.monotonic()
    model_id = post(session, server.url, "/models/images/classification.json", fields)
    first_at = first_progress = None
    while True:
        data = session.get(f"{server.url}/models/{model_id}.json").json()
        now = time.monotonic()
        if first_at is None and data["progress"] > 0:
            first_at, first_progress = now, data["progress"]
        if data["status"] in ("Done", "Error", "Aborted"):
            break
        time.sleep(0.02)
    if data["status"] != "Done" or first_at is None:
        raise SystemExit(f"model {model_id} ended {data['status']}: {data.get('error')}")
    return images * epochs * (1 - first_progress) / (now - first_at), first_at - submitted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    from ray.cluster_utils import Cluster

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        folder = write_digits_folder(tmp_path / "digits", per_class=PER_CLASS)
        jobs_dir = tmp_path / "jobs"
        jobs_dir.mkdir()
        cluster = Cluster(initialize_head=True, head_node_args=dict(num_cpus=1, object_store_memory=80 * 2**20,
                                                                    include_dashboard=False))  # fmt: skip
        local = LiveServer(jobs_dir)
        ray = LiveServer(jobs_dir, env={"DIGITS_CLUSTER": cluster.address})
        # backend -> (images/s, first model's latency, next model's latency) of each server started
        results: dict[str, list[tuple[float, float, float]]] = {"local": [], "ray": []}
        try:
            local.start()
            session = local.session()
            dataset_id = post(session, local.url, "/datasets/images/classification.json",
                              dict(method="folder", folder_train=str(folder), encoding="png", resize_channels="1",
                                   resize_width="28", resize_height="28", dataset_name="bench"))  # fmt: skip
            images = wait_done(session, local.url, f"/datasets/{dataset_id}.json")["entries"]["train"]
            local.stop()
            for _ in range(args.repeat):
                for name, server in (("local", local), ("ray", ray)):
                    server.start(timeout=60)
                    try:
                        first_speed, first = train_once(server, dataset_id, images, args.epochs)
                        next_speed, after = train_once(server, dataset_id, images, args.epochs)
                        results[name].append((max(first_speed, next_speed), first, after))
                    finally:
                        server.stop()
        finally:
            local.stop()
            ray.stop()
            cluster.shutdown()
    best = {name: [max(r[0] for r in runs), min(r[1] for r in runs), min(r[2] for r in runs)]
            for name, runs in results.items()}  # fmt: skip
    print(f"load average (1 min) at start {load_before:.1f}, at end {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for name, (speed, first, after) in best.items():
        print(f"{name:6s} {speed:8.0f} images/s   submit to first progress: first model {first:5.2f} s, "
              f"next {after:5.2f} s")  # fmt: skip
    ratio = best["ray"][0] / best["local"][0]
    extra_first, extra_next = (best["ray"][i] - best["local"][i] for i in (1, 2))
    print(f"ray/local images/s {ratio:.2f}x (target >= 0.95x); extra time to first progress {extra_first:+.2f} s "
          f"for the first model, {extra_next:+.2f} s for the next (target < 3 s)")  # fmt: skip


if __name__ == "__main__":
    main()
