"""Fixtures: an app on a temporary jobs directory, a client logged in, folders of real images."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digits.app import create_app
from digits.config import Config


def write_digits_folder(root: Path, per_class: int | None = None, size: int = 28) -> Path:
    """scikit-learn's handwritten digits (8x8, 0..16) written as ``size``x``size`` PNGs, one folder per class."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    counts: dict[int, int] = {}
    for pixels, label in zip(digits.images, digits.target, strict=True):
        label = int(label)
        if per_class is not None and counts.get(label, 0) >= per_class:
            continue
        counts[label] = counts.get(label, 0) + 1
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        image = Image.fromarray((pixels * (255 / 16)).astype(np.uint8), mode="L").resize((size, size), Image.BILINEAR)
        image.save(folder / f"{label}_{counts[label]:04d}.png")
    return root


@pytest.fixture(scope="session")
def digits_folder(tmp_path_factory) -> Path:
    """30 images of each digit class as 28x28 grayscale PNGs."""
    return write_digits_folder(tmp_path_factory.mktemp("digits"), per_class=30)


@pytest.fixture
def app(tmp_path):
    app = create_app(Config.from_env(jobs_dir=tmp_path / "jobs", testing=True))
    yield app
    app.extensions["digits"].scheduler.shutdown()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def logged_in(client):
    client.post("/login", data={"username": "fred"})
    return client


def wait_for_status(client, job_id: str, statuses=("Done", "Error", "Aborted"), timeout: float = 60.0) -> dict:
    """Poll ``/datasets/<id>/status`` (the way DIGITS' scripts do) until the job finishes."""
    deadline = time.monotonic() + timeout
    while True:
        status = client.get(f"/jobs/{job_id}/status").get_json()
        if status["status"] in statuses or time.monotonic() > deadline:
            return status
        time.sleep(0.2)
