"""Running the command-line tools as the scheduler does, for the training programs' tests."""

import json
import os
import subprocess
import sys
from pathlib import Path

from sample_images import write_digits_folder

REPO = Path(__file__).resolve().parent.parent


def run_module(
    module: str, *args, cwd: Path = REPO, timeout: int = 120, env: dict | None = None
) -> tuple[int, list[dict], str]:
    """Run ``python -m module args`` in ``cwd`` with ``env`` added to the environment; returns (exit status,
    protocol events, stderr)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd,
        timeout=timeout,
    )  # fmt: skip
    return proc.returncode, [json.loads(line) for line in proc.stdout.splitlines()], proc.stderr


def events_of(events: list[dict], kind: str) -> list[dict]:
    """The events of ``kind``, in order."""
    return [e for e in events if e["event"] == kind]


def digits_dataset(root: Path, per_class: int, env: dict | None = None) -> Path:
    """A digits dataset in ``root`` as the app builds it (``per_class`` 28x28 images of each digit): train_db,
    val_db (25%), labels.txt, mean.npy. Returns ``root``."""
    write_digits_folder(root / "images", per_class=per_class)
    status, _, stderr = run_module(
        "digits.tools.parse_folder", root / "images", "--out-dir", root, "--pct-val", 25, "--seed", 0, env=env
    )
    assert status == 0, stderr
    for stage in ("train", "val"):
        status, _, stderr = run_module(
            "digits.tools.create_db", "--list", root / f"{stage}.txt", "--db", root / f"{stage}_db",
            "--width", 28, "--height", 28, "--channels", 1, "--mean", root / f"mean_{stage}.npy", "--workers", 1,
            env=env,
        )  # fmt: skip
        assert status == 0, stderr
    (root / "mean_train.npy").rename(root / "mean.npy")
    return root


def write_records(path: Path, records: list) -> None:
    """Write ``records`` (``digits.records.ImageRecord``) as an LMDB database at ``path``, keyed in order."""
    import lmdb

    from digits.records import encode_record, record_key

    env = lmdb.open(str(path), map_size=1 << 28)
    with env.begin(write=True) as txn:
        for index, record in enumerate(records):
            txn.put(record_key(index), encode_record(record))
    env.close()


def gradient_records(count: int = 256) -> tuple[list, list]:
    """The records of two data extensions' databases, 16x16 gray: gradient images labelled with their two slopes
    (float vectors, regression), and noisy images labelled with the clean image (label arrays)."""
    import numpy as np

    from digits.records import ImageRecord, LabelArray, encode_array

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:16, 0:16]
    slopes, denoise = [], []
    for _ in range(count):
        a, b = rng.uniform(-1, 1, 2)
        image = np.clip(128 + 7 * (a * x + b * y), 0, 255).astype(np.uint8)[:, :, None]
        slopes.append(ImageRecord(image.tobytes(), "raw", 16, 16, 1, label_values=[a, b]))
        noisy = np.clip(image + rng.normal(0, 20, image.shape), 0, 255).astype(np.uint8)
        clean, fmt = encode_array(image, "png")
        denoise.append(ImageRecord(noisy.tobytes(), "raw", 16, 16, 1, label_array=LabelArray(clean, fmt, (16, 16, 1))))
    return slopes, denoise
