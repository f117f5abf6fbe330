"""The job store: atomic job.json, loading at start, interrupted jobs, staging leftovers, refused deletes."""

from __future__ import annotations

import json

import pytest

from digits.jobs import DeleteRefused, Job, JobStore, Status, Task, new_job_id


def make_job(store: JobStore, **fields) -> Job:
    job = Job(id=new_job_id(), type="dataset", kind="test", name="a job", username="fred", directory="", **fields)
    return store.add(job)


def test_added_job_is_on_disk_and_reloads(tmp_path):
    store = JobStore(tmp_path)
    job = make_job(store, tasks=[Task(id="t", name="T", tool="x", args=["--a", "b c"])])
    data = json.loads((tmp_path / job.id / "job.json").read_text())
    assert data["name"] == "a job" and data["tasks"][0]["args"] == ["--a", "b c"]
    again = JobStore(tmp_path)
    assert again.load_all() == []
    assert again.get(job.id).to_dict() == job.to_dict()
    assert not list(tmp_path.glob(f"{job.id}/.*.tmp"))


def test_running_job_is_marked_interrupted_on_load(tmp_path):
    store = JobStore(tmp_path)
    job = make_job(store, tasks=[Task(id="a", name="A", tool="x", args=[]), Task(id="b", name="B", tool="x", args=[])])
    job.tasks[0].status = Status.DONE
    job.tasks[1].status = Status.RUNNING
    job.record_status()
    store.save(job)
    again = JobStore(tmp_path)
    again.load_all()
    loaded = again.get(job.id)
    assert loaded.interrupted and loaded.status == Status.ABORTED
    assert loaded.tasks[0].status == Status.DONE
    assert "Interrupted" in loaded.tasks[1].error["message"]
    # and that is saved, so a second restart says the same
    assert json.loads((tmp_path / job.id / "job.json").read_text())["interrupted"] is True


def test_unfinished_creation_and_stray_dirs_are_not_jobs(tmp_path):
    store = JobStore(tmp_path)
    staging = store.staging_dir("20200101-000000-abcd")
    (staging / "train.txt").write_text("x 0\n")
    (tmp_path / "not-a-job").mkdir()
    again = JobStore(tmp_path)
    assert again.load_all() == []
    assert again.all() == []
    assert not staging.exists()


def test_corrupt_job_file_is_reported_not_fatal(tmp_path):
    store = JobStore(tmp_path)
    good = make_job(store)
    bad = tmp_path / "20200101-000000-dead"
    bad.mkdir()
    (bad / "job.json").write_text("{not json")
    again = JobStore(tmp_path)
    problems = again.load_all()
    assert len(problems) == 1 and "20200101-000000-dead" in problems[0]
    assert [j.id for j in again.all()] == [good.id]


def test_delete_is_refused_while_dependents_exist(tmp_path):
    store = JobStore(tmp_path)
    dataset = make_job(store)
    model = make_job(store, depends_on_jobs=[dataset.id])
    with pytest.raises(DeleteRefused) as refused:
        store.delete(dataset)
    assert refused.value.dependents == [model]
    assert (tmp_path / dataset.id).is_dir()
    store.delete(model)
    store.delete(dataset)
    assert store.all() == [] and not (tmp_path / dataset.id).exists()


def test_status_is_derived_from_tasks():
    job = Job(id="j", type="dataset", kind="k", name="n", username="u", directory="",
              tasks=[Task(id="a", name="A", tool="x", args=[]), Task(id="b", name="B", tool="x", args=[])])  # fmt: skip
    assert job.derived_status() == Status.INITIALIZED
    job.tasks[0].status = Status.DONE
    job.tasks[1].status = Status.WAITING
    assert job.derived_status() == Status.RUNNING  # between two tasks
    job.tasks[0].status = Status.WAITING
    assert job.derived_status() == Status.WAITING
    job.tasks[0].status = Status.DONE
    job.tasks[1].status = Status.RUNNING
    assert job.derived_status() == Status.RUNNING
    job.tasks[1].status = Status.ERROR
    assert job.derived_status() == Status.ERROR
    job.tasks[1].status = Status.DONE
    assert job.derived_status() == Status.DONE
