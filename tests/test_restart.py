"""The server killed (SIGKILL) while a dataset is being created: after a restart nothing is lost or corrupt."""

from __future__ import annotations

import json
from pathlib import Path

import psutil
import pytest
from helpers import CREATE_DATASET, dataset_fields, poll
from sample_images import write_color_folder
from server import LiveServer

pytestmark = pytest.mark.slow


def wait_json(session, url, predicate, timeout=60.0):
    """GET ``url`` from the live server until ``predicate`` holds for its JSON; returns that JSON."""
    return poll(lambda: session.get(url).json(), predicate, timeout=timeout, interval=0.1, what=url)


def test_sigkill_during_creation_then_restart(tmp_path, digits_folder):
    jobs_dir = tmp_path / "jobs"
    jobs_dir.mkdir()
    server = LiveServer(jobs_dir).start()
    try:
        pid = server.process.pid
        maps = Path(f"/proc/{pid}/maps").read_text()
        assert "tensorflow" not in maps, "the web process must not load TensorFlow"
        session = server.session()
        small = dataset_fields(digits_folder, dataset_name="finished before the crash")
        done_id = session.post(server.url + CREATE_DATASET, data=small).json()["id"]
        wait_json(session, f"{server.url}/datasets/{done_id}/status", lambda d: d["status"] == "Done")

        big = dataset_fields(write_color_folder(tmp_path / "color"), resize_channels="3", resize_width="224",
                             resize_height="224", dataset_name="killed midway")  # fmt: skip
        killed_id = session.post(server.url + CREATE_DATASET, data=big).json()["id"]
        wait_json(
            session,
            f"{server.url}/datasets/{killed_id}.json",
            lambda d: any(t["id"] == "create_db_train" and t["progress"] > 0.05 for t in d["tasks"]),
        )
        children = psutil.Process(pid).children(recursive=True)
        assert children, "the creation runs in child processes"
        server.kill()
        # the orphaned tool notices and stops: nothing runs on unattended
        gone, alive = psutil.wait_procs(children, timeout=10)
        assert not alive, [p.cmdline() for p in alive]
    finally:
        server.stop()

    # every job.json is whole
    for job_file in jobs_dir.glob("*/job.json"):
        json.loads(job_file.read_text())

    server = LiveServer(jobs_dir).start()
    try:
        session = server.session()
        listed = {d["id"]: d for d in session.get(server.url + "/index.json").json()["datasets"]}
        assert set(listed) == {done_id, killed_id}
        assert listed[done_id]["status"] == "Done" and not listed[done_id]["interrupted"]
        assert listed[killed_id]["status"] == "Aborted" and listed[killed_id]["interrupted"]
        killed = session.get(f"{server.url}/datasets/{killed_id}.json").json()
        assert "Interrupted" in killed["error"]["message"]
        assert killed["stages"] == [] and not (Path(killed["directory"]) / "train_db").exists()
        assert session.get(f"{server.url}/datasets/{done_id}/explore.json?db=train").json()["total"] > 0

        # Clone gives the same form back; sent again, it runs to the end
        form_page = session.get(f"{server.url}/clone/{killed_id}").text
        assert 'value="killed midway"' in form_page
        again = session.post(server.url + CREATE_DATASET, data=big).json()
        final = wait_json(session, f"{server.url}/datasets/{again['id']}/status",
                          lambda d: d["status"] in ("Done", "Error"), timeout=240)  # fmt: skip
        assert final["status"] == "Done", final
    finally:
        server.stop()
