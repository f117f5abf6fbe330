"""What many tests do: fill DIGITS' dataset and model forms, wait for a job, log a client in."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import TypeVar

from flask import Flask
from flask.testing import FlaskClient

T = TypeVar("T")

CREATE_DATASET = "/datasets/images/classification.json"
CREATE_MODEL = "/models/images/classification.json"
FINISHED = ("Done", "Error", "Aborted")

# New Image Classification Dataset, as the tests fill it for scikit-learn's digits: 28x28 grayscale.
DIGITS_DATASET = dict(
    method="folder", resize_channels="1", resize_width="28", resize_height="28", encoding="png", dataset_name="digits",
)  # fmt: skip

# New Image Classification Model with the standard LeNet, as small as training gets: one epoch.
LENET_MODEL = dict(
    method="standard", standard_networks="lenet", framework="tensorflow", train_epochs="1", model_name="lenet",
)  # fmt: skip


def logged_in_client(app: Flask, username: str = "fred") -> FlaskClient:
    """A test client of ``app`` with ``username`` logged in (the cookie kept by the client)."""
    client = app.test_client()
    client.post("/login", data={"username": username})
    return client


def post_form(client, url: str, fields: dict) -> dict:
    """POST ``fields`` to ``url``; fails showing the errors unless the form was accepted. Returns the answer's JSON."""
    answer = client.post(url, data=fields)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def dataset_fields(folder: Path, /, **overrides: str) -> dict:
    """The digits dataset form (:data:`DIGITS_DATASET`) for ``folder``; ``overrides`` replace or add fields."""
    return {**DIGITS_DATASET, "folder_train": str(folder), **overrides}


def create_dataset(client, folder: Path, **overrides: str) -> dict:
    """Start a digits dataset of ``folder`` (see :func:`dataset_fields`); returns the answer: id, name, status."""
    return post_form(client, CREATE_DATASET, dataset_fields(folder, **overrides))


def make_dataset(client, folder: Path, **overrides: str) -> str:
    """Create a digits dataset of ``folder`` and wait until it is Done; returns its id."""
    job_id = create_dataset(client, folder, **overrides)["id"]
    wait_done(client, job_id)
    return job_id


def lenet_fields(dataset: str, /, **overrides: str) -> dict:
    """The LeNet model form (:data:`LENET_MODEL`) on ``dataset``; ``overrides`` replace or add fields."""
    return {**LENET_MODEL, "dataset": dataset, **overrides}


def train_lenet(client, dataset: str, /, timeout: float = 300.0, **overrides: str) -> str:
    """Train a LeNet on ``dataset`` (see :func:`lenet_fields`) and wait until it is Done; returns the model's id."""
    job_id = post_form(client, CREATE_MODEL, lenet_fields(dataset, **overrides))["id"]
    wait_done(client, job_id, timeout=timeout)
    return job_id


def poll(read: Callable[[], T], until: Callable[[T], object], timeout: float = 20.0, interval: float = 0.05,
         what: str = "the condition") -> T:  # fmt: skip
    """Call ``read`` every ``interval`` seconds until ``until`` holds for what it returned; returns that value.

    Fails (AssertionError) after ``timeout`` seconds, naming ``what`` was awaited and the last value read.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if until(value):
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout:g} s waiting for {what}; last: {value!r}"
        time.sleep(interval)


def wait_until(predicate: Callable[[], object], timeout: float = 20.0) -> None:
    """Wait until ``predicate()`` is true; fails after ``timeout`` seconds."""
    poll(predicate, bool, timeout=timeout)


def wait_for_status(client, job_id: str, statuses: Collection[str] = FINISHED, timeout: float = 60.0) -> dict:
    """Poll ``/jobs/<id>/status`` (the way DIGITS' scripts do) until the job's status is one of ``statuses``.

    Returns the status answer (status, type, name, error). Fails after ``timeout`` seconds, naming the job,
    its status and its error.
    """
    return poll(
        lambda: client.get(f"/jobs/{job_id}/status").get_json(),
        lambda status: status["status"] in statuses,
        timeout=timeout,
        interval=0.2,
        what=f"job {job_id} to be {' or '.join(statuses)}",
    )


def wait_done(client, job_id: str, timeout: float = 60.0) -> dict:
    """Wait until the job finishes and check it is Done; fails with the job's error otherwise. Returns its status."""
    status = wait_for_status(client, job_id, timeout=timeout)
    ended = f"job {job_id} ({status.get('name')}) ended {status['status']}"
    assert status["status"] == "Done", f"{ended}: {status['error']}"
    return status
