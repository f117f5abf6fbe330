"""A full disk: the jobs directory on a 16 MB tmpfs the test mounts (as root), filled while a dataset builds and
while a model trains. The job ends as an Error saying "no space left in <dir>", the scheduler runs new jobs once
space is back, and a restarted app loads the jobs directory. Where mounts are refused the tests are skipped,
saying why.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
from pathlib import Path

import pytest
from helpers import (
    CREATE_MODEL,
    create_dataset,
    lenet_fields,
    logged_in_client,
    poll,
    post_form,
    wait_done,
    wait_for_status,
)
from sample_images import write_color_folder

from digits.web.services import services_of

SIZE = "16m"


@pytest.fixture
def small_jobs_dir(tmp_path):
    """``tmp_path / "jobs"`` on a tmpfs of :data:`SIZE`, unmounted after the test."""
    jobs_dir = tmp_path / "jobs"
    jobs_dir.mkdir()
    if os.geteuid() != 0:
        pytest.skip(f"mounting a small tmpfs for the jobs directory needs root; this test runs as uid {os.geteuid()}")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs", str(jobs_dir)],
                             capture_output=True, text=True)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"this machine refuses to mount a tmpfs: {(mounted.stderr or mounted.stdout).strip()}")
    try:
        yield jobs_dir
    finally:
        if subprocess.run(["umount", str(jobs_dir)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(jobs_dir)], capture_output=True)


def fill(directory: Path) -> Path:
    """Write a file in ``directory`` until the disk is full; returns it."""
    filler = directory / "filler.bin"
    chunk = b"\0" * (1 << 20)
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(chunk)
                f.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    return filler


def assert_no_space_error(client, job_id: str, jobs_dir: Path) -> dict:
    status = wait_for_status(client, job_id, timeout=120)
    assert status["status"] == "Error", status
    assert "no space left" in status["error"].lower(), status
    print(f"job {job_id} ended: {status['status']}: {status['error']}")
    return status


def assert_still_works(make_app, app, jobs_dir: Path, digits_folder: Path, failed: list[str]) -> None:
    """A new small job runs on the same app; a restarted app loads every job, the failed ones as Errors."""
    client = logged_in_client(app)
    assert client.get("/").status_code == 200 and client.get("/index.json").status_code == 200
    small = create_dataset(client, digits_folder, dataset_name="after")["id"]
    wait_done(client, small, timeout=120)
    for job_file in jobs_dir.glob("*/job.json"):
        json.loads(job_file.read_text())  # every job.json is whole
    assert not list(jobs_dir.glob("*/.job.json.*.tmp"))
    services_of(app).shutdown()
    again = logged_in_client(make_app(jobs_dir))
    listed = again.get("/index.json").get_json()
    jobs = {j["id"]: j for j in listed["datasets"] + listed["models"]}
    assert jobs[small]["status"] == "Done"
    for job_id in failed:
        assert jobs[job_id]["status"] == "Error", jobs[job_id]


def test_disk_full_while_a_dataset_builds(small_jobs_dir, make_app, digits_folder, tmp_path):
    # Raw 256x256 color records are 192 KiB each: 200 images need twice the disk.
    folder = write_color_folder(tmp_path / "color", classes=2, per_class=100)
    app = make_app(small_jobs_dir)
    client = logged_in_client(app)
    job_id = create_dataset(client, folder, resize_channels="3", resize_width="256", resize_height="256",
                            encoding="none", folder_pct_val="10", dataset_name="too big")["id"]  # fmt: skip
    status = assert_no_space_error(client, job_id, small_jobs_dir)
    assert str(small_jobs_dir) in status["error"]
    dataset = client.get(f"/datasets/{job_id}.json").get_json()
    assert "train" not in dataset["stages"], "no half-built database is offered"
    assert all(t["status"] in ("Error", "Aborted", "Done") for t in dataset["tasks"])
    assert_still_works(make_app, app, small_jobs_dir, digits_folder, [job_id])


def test_disk_full_while_a_model_trains(small_jobs_dir, make_app, digits_folder):
    app = make_app(small_jobs_dir)
    client = logged_in_client(app)
    dataset = create_dataset(client, digits_folder)["id"]
    wait_done(client, dataset)
    model = post_form(client, CREATE_MODEL, lenet_fields(dataset, train_epochs="200", snapshot_interval="1"))["id"]
    # Training has started once its first metrics are in: then the disk fills, and the next snapshot cannot be written.
    poll(lambda: client.get(f"/models/{model}.json").get_json(), lambda m: m["metrics"] or m["status"] != "Running",
         timeout=180, what="the first metrics")  # fmt: skip
    filler = fill(small_jobs_dir)
    assert_no_space_error(client, model, small_jobs_dir)
    answer = client.get(f"/models/{model}.json").get_json()
    assert answer["hardware"] is None, "the training's process has ended"
    assert (small_jobs_dir / model / "job.json").is_file()
    filler.unlink()
    assert_still_works(make_app, app, small_jobs_dir, digits_folder, [model])
