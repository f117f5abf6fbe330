"""Benchmark ``digits.tools.create_db`` against a plain single-process loop.

    .venv/bin/python bench/create_db.py [--png 20000] [--jpeg 2000] [--repeat 1]

Generates, in a temporary folder, (a) 28x28 grayscale PNGs (scikit-learn's 8x8 digits upscaled, with
noise and shifts; 10 classes) and (b) 256x256 colour JPEGs (gradients and noise, quality 90; 4 classes).
For each set it times our tool (its ``main(argv)`` called in this process, so interpreter start-up
is not counted) and a baseline that does, for each image, Pillow open/convert/resize, the same
encoding, ``txn.put``, and a commit every 1,000 images. Prints images/s for both and the ratio.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import random
import shutil
import sys
import tempfile
import time

import lmdb
import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from digits.imaging import JPEG_QUALITY, PNG_COMPRESS_LEVEL  # noqa: E402 - needs the path above
from digits.records import ImageRecord, encode_record, record_key  # noqa: E402
from digits.tools import create_db  # noqa: E402


def _make_png_class(args: tuple[str, int, int]) -> list[tuple[str, int]]:
    from sklearn.datasets import load_digits

    folder, label, count = args
    digits = load_digits()
    sources = digits.images[digits.target == label]
    rng = np.random.default_rng(label)
    os.makedirs(folder, exist_ok=True)
    entries = []
    for i in range(count):
        small = Image.fromarray((sources[i % len(sources)] * 16).clip(0, 255).astype(np.uint8))
        big = np.asarray(small.resize((24, 24), Image.Resampling.BILINEAR), dtype=np.float64)
        canvas = np.zeros((28, 28))
        dy, dx = rng.integers(0, 5, 2)
        canvas[dy : dy + 24, dx : dx + 24] = big
        canvas += rng.normal(0, 12, canvas.shape)
        path = os.path.join(folder, f"{i:05d}.png")
        Image.fromarray(canvas.clip(0, 255).astype(np.uint8), mode="L").save(path)
        entries.append((path, label))
    return entries


def _make_jpeg_class(args: tuple[str, int, int]) -> list[tuple[str, int]]:
    folder, label, count = args
    rng = np.random.default_rng(100 + label)
    os.makedirs(folder, exist_ok=True)
    y, x = np.mgrid[0:256, 0:256] / 255.0
    entries = []
    for i in range(count):
        a, b, c = rng.uniform(0.2, 1.0, 3)
        base = np.stack([x * a, y * b, (x + y) * c / 2], axis=2) * 255
        base[..., label % 3] *= 0.5
        pixels = base + rng.normal(0, 20, base.shape)
        path = os.path.join(folder, f"{i:05d}.jpg")
        Image.fromarray(pixels.clip(0, 255).astype(np.uint8), mode="RGB").save(path, quality=90)
        entries.append((path, label))
    return entries


def make_set(root: str, maker, classes: int, total: int) -> str:
    """Generate ``total`` images over ``classes`` class folders; returns the path of a shuffled list file."""
    jobs = [(os.path.join(root, f"class{label}"), label, total // classes) for label in range(classes)]
    with multiprocessing.get_context("fork").Pool() as pool:
        entries = [entry for part in pool.map(maker, jobs) for entry in part]
    random.Random(0).shuffle(entries)
    list_path = os.path.join(root, "list.txt")
    with open(list_path, "w") as f:
        f.writelines(f"{path} {label}\n" for path, label in entries)
    return list_path


def baseline(list_path: str, db_path: str, width: int, height: int, channels: int, encoding: str) -> int:
    """The simple way: one process, one image after the other; returns the number of records."""
    mode = "L" if channels == 1 else "RGB"
    env = lmdb.open(db_path, map_size=1 << 40)
    txn = env.begin(write=True)
    count = 0
    with open(list_path) as f:
        for line in f:
            path, label = line.rstrip("\n").rsplit(" ", 1)
            img = Image.open(path).convert(mode).resize((width, height), Image.Resampling.BILINEAR)
            buffer = io.BytesIO()
            if encoding == "png":
                img.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
            else:
                img.save(buffer, format="JPEG", quality=JPEG_QUALITY)
            record = ImageRecord(buffer.getvalue(), encoding, height, width, channels, int(label))
            txn.put(record_key(count), encode_record(record))
            count += 1
            if count % 1000 == 0:
                txn.commit()
                txn = env.begin(write=True)
    txn.commit()
    env.close()
    return count


def run_set(name: str, list_path: str, work: str, width: int, height: int, channels: int, encoding: str, repeat: int):
    with open(list_path) as f:
        total = sum(1 for _ in f)
    argv = [
        "--list", list_path, "--width", str(width), "--height", str(height), "--channels", str(channels),
        "--encoding", encoding, "--resize-mode", "squash", "--no-shuffle", "--mean", os.path.join(work, "mean.npy"),
    ]  # fmt: skip
    ours_best = base_best = float("inf")
    for attempt in range(repeat):
        db = os.path.join(work, f"ours{attempt}")
        start = time.perf_counter()
        create_db.main([*argv, "--db", db])
        ours_best = min(ours_best, time.perf_counter() - start)
        shutil.rmtree(db)
        db = os.path.join(work, f"base{attempt}")
        start = time.perf_counter()
        baseline(list_path, db, width, height, channels, encoding)
        base_best = min(base_best, time.perf_counter() - start)
        shutil.rmtree(db)
    ours, base = total / ours_best, total / base_best
    print(
        f"{name}: {total} images -> {height}x{width}x{channels} {encoding}: create_db {ours:.0f} images/s "
        f"({os.cpu_count()} workers), baseline {base:.0f} images/s, ratio {ours / base:.2f}",
        file=sys.stderr,
    )
    return ours / base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--png", type=int, default=20_000, help="number of 28x28 grayscale PNGs")
    parser.add_argument("--jpeg", type=int, default=2_000, help="number of 256x256 colour JPEGs")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each; the best is kept")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-create-db-") as root:
        start = time.perf_counter()
        png_list = make_set(os.path.join(root, "png"), _make_png_class, 10, args.png)
        jpeg_list = make_set(os.path.join(root, "jpeg"), _make_jpeg_class, 4, args.jpeg)
        print(f"generated the images in {time.perf_counter() - start:.1f} s", file=sys.stderr)
        results = {
            "png": run_set("PNG set", png_list, root, 28, 28, 1, "png", args.repeat),
            "jpeg": run_set("JPEG set", jpeg_list, root, 224, 224, 3, "jpg", args.repeat),
        }
    print(f"ratios: PNG {results['png']:.2f} (target 1.2), JPEG {results['jpeg']:.2f} (target 1.6)", file=sys.stderr)


if __name__ == "__main__":
    main()
