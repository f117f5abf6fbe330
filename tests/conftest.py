"""Fixtures: an app on a temporary jobs directory, a client logged in, folders of real images."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sample_images import write_digits_folder

from digits.app import create_app
from digits.config import Config


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
