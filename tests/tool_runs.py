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
