"""How the server answers a room of open pages while a dataset builds and a model trains, and what that
load costs the training.

    .venv/bin/python bench/load.py [--clients 50] [--sockets 20] [--epochs 3]

Starts ``python -m digits`` on 127.0.0.1 (a temporary jobs directory), builds a dataset of generated 28x28
digits and trains a LeNet on it with no load (the baseline images/s). Then trains the same LeNet again
while ``--clients`` threads each poll ``/index.json`` and a job's JSON (the model's or the new dataset's)
once a second, ``--sockets`` Socket.IO clients sit joined to the home and job rooms, and a second dataset
builds. The load stops when the training ends (or after ``--max-seconds``). Prints p50, p95, p99 latency,
the error count and the loaded training's images/s against the baseline. Target: p95 under 200 ms, no
errors, at least 0.9x.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
import socketio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from sample_images import write_digits_folder  # noqa: E402
from server import LiveServer  # noqa: E402

PER_CLASS = 200


def dataset(session: requests.Session, url: str, folder: Path, name: str) -> str:
    fields = dict(method="folder", folder_train=str(folder), encoding="png", resize_channels="1", resize_width="28",
                  resize_height="28", dataset_name=name)  # fmt: skip
    return session.post(url + "/datasets/images/classification.json", data=fields).json()["id"]


def wait(session: requests.Session, url: str, job_id: str, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while (status := session.get(f"{url}/jobs/{job_id}/status").json())["status"] not in ("Done", "Error", "Aborted"):
        if time.monotonic() > deadline:
            raise SystemExit(f"job {job_id} still {status['status']} after {timeout:.0f} s")
        time.sleep(0.5)
    if status["status"] != "Done":
        raise SystemExit(f"job {job_id} ended {status['status']}: {status['error']}")


def train(session: requests.Session, url: str, dataset_id: str, epochs: int) -> str:
    fields = dict(method="standard", standard_networks="lenet", framework="tensorflow", train_epochs=str(epochs),
                  model_name="load", dataset=dataset_id, random_seed="1")  # fmt: skip
    return session.post(url + "/models/images/classification.json", data=fields).json()["id"]


def images_per_second(session: requests.Session, url: str, model_id: str, images: int, epochs: int) -> float:
    """Training images over the time the model was Running (from its status history)."""
    history = session.get(f"{url}/models/{model_id}.json").json()["status_history"]
    started = next(at for status, at in history if status == "Running")
    ended = next(at for status, at in reversed(history) if status == "Done")
    return images * epochs / (ended - started)


class Load:
    """Pollers and Socket.IO clients running until :meth:`stop`; latencies and errors collected."""

    def __init__(self, url: str, cookies: dict, job_urls: list[str], clients: int, sockets: int, rooms: list[str]):
        self.url, self.cookies, self.job_urls = url, cookies, job_urls
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.done = threading.Event()
        self.threads = [threading.Thread(target=self._poll, args=(i,), daemon=True) for i in range(clients)]
        self.sockets = []
        for i in range(sockets):
            client = socketio.Client()
            client.connect(url, transports=["polling"], headers={"Cookie": f"session={cookies['session']}"})
            client.emit("join", {"room": rooms[i % len(rooms)]})
            self.sockets.append(client)

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def _poll(self, index: int) -> None:
        session = requests.Session()
        session.cookies.update(self.cookies)
        paths = ["/index.json", self.job_urls[index % len(self.job_urls)]]
        while not self.done.is_set():
            tick = time.monotonic()
            for path in paths:
                started = time.perf_counter()
                try:
                    answer = session.get(self.url + path, timeout=10)
                    if answer.status_code != 200:
                        self.errors.append(f"{path}: {answer.status_code}")
                except requests.RequestException as exc:
                    self.errors.append(f"{path}: {exc}")
                self.latencies.append(time.perf_counter() - started)
            self.done.wait(max(0.0, 1.0 - (time.monotonic() - tick)))

    def stop(self) -> None:
        self.done.set()
        for thread in self.threads:
            thread.join()
        for client in self.sockets:
            client.disconnect()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--sockets", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--max-seconds", type=float, default=600)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        folder = write_digits_folder(tmp_path / "digits", per_class=PER_CLASS)
        (tmp_path / "jobs").mkdir()
        server = LiveServer(tmp_path / "jobs").start()
        try:
            session = server.session()
            url = server.url
            first = dataset(session, url, folder, "digits")
            wait(session, url, first)
            train_images = session.get(f"{url}/datasets/{first}.json").json()["entries"]["train"]

            baseline = train(session, url, first, args.epochs)
            wait(session, url, baseline)
            alone = images_per_second(session, url, baseline, train_images, args.epochs)

            loaded = train(session, url, first, args.epochs)
            second = dataset(session, url, folder, "digits again")  # builds while the model trains
            load = Load(url, session.cookies.get_dict(), [f"/models/{loaded}.json", f"/datasets/{second}.json"],
                        args.clients, args.sockets, ["home", loaded, second])  # fmt: skip
            load.start()
            try:
                wait(session, url, loaded, timeout=args.max_seconds)
            finally:
                load.stop()
            under_load = images_per_second(session, url, loaded, train_images, args.epochs)

            ordered = sorted(load.latencies)
            p95, p99 = (ordered[min(len(ordered) - 1, int(q * len(ordered)))] for q in (0.95, 0.99))
            print(f"{args.clients} pollers, {args.sockets} Socket.IO clients, {len(ordered)} requests")
            print(f"latency p50={statistics.median(ordered) * 1000:.0f} ms p95={p95 * 1000:.0f} ms "
                  f"p99={p99 * 1000:.0f} ms max={ordered[-1] * 1000:.0f} ms; errors: {len(load.errors)}")  # fmt: skip
            for error in load.errors[:5]:
                print(f"  {error}")
            print(f"training: {alone:.0f} images/s alone, {under_load:.0f} under load ({under_load / alone:.2f}x)")
            met = p95 < 0.2 and not load.errors and under_load >= 0.9 * alone
            print(f"target p95 < 200 ms, no errors, >= 0.9x: {'met' if met else 'NOT met'}")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
