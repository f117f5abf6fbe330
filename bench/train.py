"""Benchmark the TensorFlow training program against a hand-written Keras ``model.fit`` of the same LeNet.

    .venv/bin/python bench/train.py [--images 20000] [--batch-size 64] [--epochs 2] [--repeat 2]

Generates 28x28 grayscale digits (scikit-learn's 8x8 digits upscaled, shifted, with noise; 10 classes),
writes them as PNG records to an LMDB as ``create_db`` does, then measures, on the same images:

- ours: ``python -m digits.tools.tensorflow.main`` training the standard LeNet from the LMDB (SGD, no
  validation), timed by wall clock between its first and last progress events (start-up and graph
  building left out, snapshots and metrics included);
- Keras: ``tf.keras`` ``model.fit`` of the same network (same layers, L2 0.0005, dropout, SGD) on the
  same images held in memory as a float32 array, same batch size; its last epoch is timed;
- the input pipeline alone: our ``tf.data`` pipeline reading and decoding the LMDB, no training.

Each measurement runs ``--repeat`` times, interleaved, and the best is kept (other work on a small machine
makes single runs vary by 2x). Prints images/s of each and the ratios (targets: ours >= 1.2x Keras; pipeline
>= 4x our training).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import lmdb  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from digits.imaging import encode_image  # noqa: E402 - needs the path above
from digits.records import ImageRecord, encode_record, record_key  # noqa: E402


def make_images(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``count`` noisy 28x28 digits: returns ``(uint8 [N, 28, 28, 1], int labels [N])``."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(digits.images), count)
    images = np.zeros((count, 28, 28, 1), np.uint8)
    for i, pick in enumerate(picks):
        small = Image.fromarray((digits.images[pick] * 16).clip(0, 255).astype(np.uint8))
        big = np.asarray(small.resize((24, 24), Image.Resampling.BILINEAR), dtype=np.float64)
        canvas = np.zeros((28, 28))
        dy, dx = rng.integers(0, 5, 2)
        canvas[dy : dy + 24, dx : dx + 24] = big
        canvas += rng.normal(0, 12, canvas.shape)
        images[i, :, :, 0] = canvas.clip(0, 255).astype(np.uint8)
    return images, digits.target[picks].astype(np.int64)


def write_lmdb(path: str, images: np.ndarray, labels: np.ndarray) -> None:
    """Write PNG records under keys 0..n-1, plus ``labels.npy``, as ``create_db`` lays a database out."""
    env = lmdb.open(path, map_size=1 << 30)
    with env.begin(write=True) as txn:
        for i, (pixels, label) in enumerate(zip(images, labels, strict=True)):
            encoded, fmt = encode_image(Image.fromarray(pixels[:, :, 0], mode="L"), "png")
            txn.put(record_key(i), encode_record(ImageRecord(encoded, fmt, 28, 28, 1, int(label))), append=True)
    env.close()
    np.save(os.path.join(path, "labels.npy"), labels.astype(np.int32))


def ours(work: str, db: str, batch_size: int, epochs: float) -> float:
    """Images/s of the training program, from the wall-clock times of its progress events."""
    job = os.path.join(work, "job")
    os.makedirs(job, exist_ok=True)
    labels = os.path.join(work, "labels.txt")
    with open(labels, "w") as f:
        f.write("".join(f"{i}\n" for i in range(10)))
    command = [
        sys.executable, "-m", "digits.tools.tensorflow.main",
        "--network", os.path.join(REPO, "digits", "standard_networks", "lenet.py"),
        "--train-db", db, "--labels", labels, "--mean", os.path.join(work, "mean.npy"), "--subtract-mean", "image",
        "--epochs", str(epochs), "--batch-size", str(batch_size), "--learning-rate", "0.01",
        "--snapshot-interval", "0",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": REPO}
    proc = subprocess.Popen(command, cwd=job, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    first = last = None
    for line in proc.stdout:
        event = json.loads(line)
        if event["event"] == "progress":
            last = (time.monotonic(), event["done"])
            first = first or last
        elif event["event"] == "error":
            raise RuntimeError(event["message"])
    proc.wait()
    if proc.returncode or first is None or last[1] == first[1]:
        raise RuntimeError(f"the training program failed (exit status {proc.returncode})")
    return (last[1] - first[1]) * batch_size / (last[0] - first[0])


def keras(images: np.ndarray, labels: np.ndarray, mean: np.ndarray, batch_size: int, epochs: int) -> float:
    """Images/s of ``model.fit`` of the same LeNet on the images in memory (its last epoch)."""
    import tensorflow as tf

    layers, l2 = tf.keras.layers, tf.keras.regularizers.l2(0.0005)
    model = tf.keras.Sequential(
        [
            tf.keras.Input((28, 28, 1)),
            layers.Rescaling(0.0125),
            layers.Conv2D(20, 5, activation="relu", kernel_regularizer=l2),
            layers.MaxPooling2D(2),
            layers.Conv2D(50, 5, activation="relu", kernel_regularizer=l2),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(500, activation="relu", kernel_regularizer=l2),
            layers.Dropout(0.5),
            layers.Dense(10, kernel_regularizer=l2),
        ]
    )
    model.compile(
        optimizer=tf.keras.optimizers.SGD(0.01),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )

    class EpochTimer(tf.keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.monotonic()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds = time.monotonic() - self.started

    timer = EpochTimer()
    x = images.astype(np.float32) - mean
    model.fit(x, labels, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0, callbacks=[timer])
    return len(images) / timer.seconds


def pipeline(db: str, mean: np.ndarray, batch_size: int, batches: int) -> float:
    """Images/s of our input pipeline alone: read, parse, decode, subtract the mean, batch."""
    from digits.tools.tensorflow.data import db_info, make_dataset

    dataset = make_dataset(db_info(db), batch_size, training=True, mean=mean, seed=0)
    iterator = iter(dataset)
    for _ in range(20):  # fill the prefetch buffer and let AUTOTUNE settle
        next(iterator)
    started = time.monotonic()
    for _ in range(batches):
        next(iterator)
    return batches * batch_size / (time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2, help="epochs of each training run")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each measurement; the best is kept")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-train-") as work:
        images, labels = make_images(args.images)
        db = os.path.join(work, "train_db")
        write_lmdb(db, images, labels)
        mean = images.mean(axis=0).astype(np.float32)
        np.save(os.path.join(work, "mean.npy"), mean)
        print(f"{args.images} images 28x28x1 (PNG records), batch size {args.batch_size}, {os.cpu_count()} CPUs")
        rates: dict[str, list[float]] = {"ours": [], "keras": [], "pipeline": []}
        for _ in range(args.repeat):
            rates["ours"].append(ours(work, db, args.batch_size, args.epochs))
            rates["keras"].append(keras(images, labels, mean, args.batch_size, args.epochs))
            rates["pipeline"].append(pipeline(db, mean, args.batch_size, max(100, args.images // args.batch_size)))
        ours_rate, keras_rate, pipe_rate = (max(rates[k]) for k in ("ours", "keras", "pipeline"))
        runs = {k: ", ".join(f"{r:,.0f}" for r in v) for k, v in rates.items()}
        print(f"ours (LMDB, tf.compat.v1 graph, tf_slim LeNet): {ours_rate:8,.0f} images/s (runs: {runs['ours']})")
        print(f"tf.keras model.fit (images in memory):          {keras_rate:8,.0f} images/s (runs: {runs['keras']})")
        print(f"input pipeline alone (read + decode):           {pipe_rate:8,.0f} images/s (runs: {runs['pipeline']})")
        print(f"ours / keras: {ours_rate / keras_rate:.2f}x (target 1.2x)")
        print(f"pipeline / ours: {pipe_rate / ours_rate:.2f}x (target 4x)")


if __name__ == "__main__":
    main()
