"""Benchmark the PyTorch training program against a hand-written PyTorch loop, and the TensorFlow tool, on one LeNet.

    .venv/bin/python bench/train_torch.py [--images 20000] [--batch-size 64] [--epochs 2] [--repeat 2]

Generates the 28x28 digits of ``bench/train.py`` (same generator, same PNG records in an LMDB), then measures,
on the same images:

- ours: ``python -m digits.tools.torch.main`` training ``digits/standard_networks/torch/lenet.py`` from the LMDB
  (SGD, no validation), timed by wall clock between its first and last progress events (start-up, and the
  decoding of a database that fits in memory, which the tool does before training, left out; metrics included);
- by hand: a plain PyTorch loop over the same images held in memory as one float32 NCHW tensor (mean
  subtracted once), the same network class, loss and weight decay, SGD, shuffled batches; its last epoch is timed;
- TensorFlow: ``python -m digits.tools.tensorflow.main`` with the TensorFlow LeNet, timed as ours (its
  ``TF_CPP_MIN_LOG_LEVEL`` set by the tool itself).

Each measurement runs ``--repeat`` times, interleaved, and the best is kept (other work on a small machine makes
single runs vary by 2x). Prints images/s of each and the ratios (target: ours >= 0.9x the hand-written loop).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
sys.path.insert(0, BENCH)

# bench/train.py's data, so both benchmarks train on it, and its timing of a training program.
from train import make_images, progress_rate, write_lmdb  # noqa: E402

NETWORKS = os.path.join(REPO, "digits", "standard_networks")
LENET = os.path.join(NETWORKS, "torch", "lenet.py")
TOOLS = {
    "torch": ("digits.tools.torch.main", LENET),
    "tensorflow": ("digits.tools.tensorflow.main", os.path.join(NETWORKS, "lenet.py")),
}


def tool_rate(framework: str, work: str, db: str, batch_size: int, epochs: float) -> float:
    """Images/s of the ``framework``'s training program on its LeNet, from the wall-clock times of its progress
    events."""
    module, network = TOOLS[framework]
    job = os.path.join(work, f"{framework}-job")
    os.makedirs(job, exist_ok=True)
    labels = os.path.join(work, "labels.txt")
    with open(labels, "w") as f:
        f.write("".join(f"{i}\n" for i in range(10)))
    command = [
        sys.executable, "-m", module, "--network", network,
        "--train-db", db, "--labels", labels, "--mean", os.path.join(work, "mean.npy"), "--subtract-mean", "image",
        "--epochs", str(epochs), "--batch-size", str(batch_size), "--learning-rate", "0.01",
        "--snapshot-interval", "0",
    ]  # fmt: skip
    return progress_rate(command, job, batch_size)


def by_hand(images: np.ndarray, labels: np.ndarray, mean: np.ndarray, batch_size: int, epochs: int) -> float:
    """Images/s of a plain PyTorch loop training the same LeNet on the images in memory (its last epoch)."""
    import torch

    namespace: dict = {}
    with open(LENET) as f:
        exec(compile(f.read(), LENET, "exec"), namespace)
    model = namespace["UserModel"](input_shape=[28, 28, 1], nclasses=10)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.from_numpy((images.astype(np.float32) - mean).transpose(0, 3, 1, 2).copy())
    y = torch.from_numpy(labels)
    seconds = 0.0
    for _ in range(epochs):
        started = time.monotonic()
        order = torch.randperm(len(x))
        for start in range(0, len(x), batch_size):
            batch = order[start : start + batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
            (loss + model.regularization()).backward()
            optimizer.step()
        loss.item()
        seconds = time.monotonic() - started
    return len(x) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2, help="epochs of each training run")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each measurement; the best is kept")
    parser.add_argument("--no-tensorflow", action="store_true", help="leave out the TensorFlow tool")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-train-torch-") as work:
        images, labels = make_images(args.images)
        db = os.path.join(work, "train_db")
        write_lmdb(db, images, labels)
        mean = images.mean(axis=0).astype(np.float32)
        np.save(os.path.join(work, "mean.npy"), mean)
        print(f"{args.images} images 28x28x1 (PNG records), batch size {args.batch_size}, {os.cpu_count()} CPUs")
        rates: dict[str, list[float]] = {"ours": [], "hand": [], "tensorflow": []}
        for _ in range(args.repeat):
            rates["ours"].append(tool_rate("torch", work, db, args.batch_size, args.epochs))
            rates["hand"].append(by_hand(images, labels, mean, args.batch_size, args.epochs))
            if not args.no_tensorflow:
                rates["tensorflow"].append(tool_rate("tensorflow", work, db, args.batch_size, args.epochs))
        best = {k: max(v) for k, v in rates.items() if v}
        runs = {k: ", ".join(f"{r:,.0f}" for r in v) for k, v in rates.items()}
        print(f"ours (LMDB, PyTorch tool, LeNet):         {best['ours']:8,.0f} images/s (runs: {runs['ours']})")
        print(f"hand-written PyTorch loop (in memory):    {best['hand']:8,.0f} images/s (runs: {runs['hand']})")
        if "tensorflow" in best:
            tf_rate = best["tensorflow"]
            print(f"TensorFlow tool (LMDB, tf_slim LeNet):    {tf_rate:8,.0f} images/s (runs: {runs['tensorflow']})")
        print(f"ours / hand-written: {best['ours'] / best['hand']:.2f}x (target 0.9x)")
        if "tensorflow" in best:
            print(f"ours / TensorFlow tool: {best['ours'] / best['tensorflow']:.2f}x")


if __name__ == "__main__":
    main()
