"""The local scheduler: child processes, JSON lines, dependencies, resources, abort and errors."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from helpers import wait_until

from digits.hardware import Gpu
from digits.jobs import Job, JobStore, Status, Task, new_job_id
from digits.scheduler import LocalScheduler, ResourcePools

TOOLS = Path(__file__).parent / "tools"


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(TOOLS))
    return JobStore(tmp_path / "jobs")


@pytest.fixture
def scheduler(store):
    changes: list[tuple[str, str | None]] = []
    scheduler = LocalScheduler(
        store, ResourcePools([], cpu_slots=1), on_change=lambda j, t: changes.append((j.id, t and t.id)), kill_grace=1
    )
    scheduler.changes = changes
    scheduler.start()
    yield scheduler
    scheduler.shutdown()


def fake_task(task_id: str, *args: str, **kwargs) -> Task:
    return Task(id=task_id, name=task_id.title(), tool="fake_tool", args=list(args), **kwargs)


def submit(store, scheduler, *tasks: Task, depends_on_jobs=()) -> Job:
    job = Job(
        id=new_job_id(), type="dataset", kind="test", name="job", username="fred", directory="",
        tasks=list(tasks), depends_on_jobs=list(depends_on_jobs),
    )  # fmt: skip
    store.add(job)
    scheduler.submit(job)
    return job


def test_task_runs_and_its_events_become_state(store, scheduler):
    job = submit(store, scheduler, fake_task("one", "--steps", "4"))
    wait_until(lambda: job.status == Status.DONE)
    task = job.tasks[0]
    assert task.progress == 1.0 and task.data["steps"] == 4
    log = (Path(job.directory) / task.log_name).read_text()
    assert "python -m fake_tool --steps 4" in log.splitlines()[0]  # the command, runnable by hand
    assert "not a protocol line" in log and "human-readable line" in log
    assert [s for s, _ in job.status_history] == [Status.INITIALIZED, Status.WAITING, Status.RUNNING, Status.DONE]
    assert (job.id, "one") in scheduler.changes


def test_saved_job_matches_memory(store, scheduler):
    job = submit(store, scheduler, fake_task("one"))
    saved = Path(job.directory) / "job.json"
    # The status changes in memory a moment before the scheduler writes it: wait for the file.
    wait_until(lambda: json.loads(saved.read_text())["status_history"][-1][0] == Status.DONE)
    reloaded = JobStore(store.jobs_dir)
    reloaded.load_all()
    assert reloaded.get(job.id).to_dict() == job.to_dict()


def test_error_event_carries_message_and_traceback(store, scheduler):
    job = submit(store, scheduler, fake_task("bad", "--fail"), fake_task("after", depends_on=["bad"]))
    wait_until(lambda: job.status == Status.ERROR and job.tasks[1].status in Status.FINISHED)
    assert job.tasks[0].error["message"] == "RuntimeError: the fake tool was asked to fail"
    assert "fake_tool.py" in job.tasks[0].error["traceback"]
    assert job.tasks[1].status == Status.ERROR
    assert "Bad ended as Error" in job.tasks[1].error["message"]


def test_exit_status_without_error_event_is_an_error(store, scheduler):
    job = submit(store, scheduler, fake_task("exit", "--exit", "4"))
    wait_until(lambda: job.status == Status.ERROR)
    assert job.tasks[0].error["message"] == "the task exited with status 4"


def test_dependencies_order_tasks(store, scheduler):
    job = submit(
        store,
        scheduler,
        fake_task("first", "--steps", "3", "--sleep", "0.1"),
        fake_task("second", depends_on=["first"]),
    )
    wait_until(lambda: job.status == Status.DONE)
    first, second = job.tasks
    assert second.started >= first.finished


def test_cpu_slots_queue_tasks_visibly(store, scheduler):
    slow = submit(store, scheduler, fake_task("slow", "--steps", "20", "--sleep", "0.1"))
    queued = submit(store, scheduler, fake_task("queued"))
    wait_until(lambda: slow.tasks[0].status == Status.RUNNING)
    wait_until(lambda: queued.tasks[0].waiting_for == "waiting for a CPU slot")
    assert queued.status == Status.WAITING
    wait_until(lambda: queued.status == Status.DONE)


def test_job_waits_for_the_job_it_depends_on(store, scheduler):
    dataset = submit(store, scheduler, fake_task("build", "--steps", "5", "--sleep", "0.1"))
    model = submit(store, scheduler, Task(id="train", name="Train", tool="fake_tool", args=[], resources={}),
                   depends_on_jobs=[dataset.id])  # fmt: skip
    wait_until(lambda: (model.tasks[0].waiting_for or "").startswith("waiting for dataset"))
    wait_until(lambda: model.status == Status.DONE)
    assert model.tasks[0].started >= dataset.tasks[0].finished


def test_abort_stops_the_process_and_keeps_the_job(store, scheduler):
    job = submit(
        store,
        scheduler,
        fake_task("long", "--steps", "1000", "--sleep", "0.05"),
        fake_task("next", depends_on=["long"]),
    )
    wait_until(lambda: job.tasks[0].progress > 0)
    started = time.monotonic()
    scheduler.abort(job, wait=True)
    assert time.monotonic() - started < 5
    assert [t.status for t in job.tasks] == [Status.ABORTED, Status.ABORTED]
    assert job.status == Status.ABORTED
    assert store.get(job.id) is job


def test_gpu_requests(store):
    pools = ResourcePools([Gpu(0, "A", 1), Gpu(1, "B", 1)], cpu_slots=1)
    assert pools.missing({"gpus": 3}) == "3 GPUs were asked for but this machine has 2"
    assert pools.missing({"gpus": [5]}) == "GPU 5 does not exist on this machine (it has 2)"
    first, _ = pools.try_reserve({"gpus": 1})
    assert first == {"gpus": [0]}
    assert pools.try_reserve({"gpus": [0]}) == (None, "waiting for GPU 0")
    assert pools.try_reserve({"gpus": 2}) == (None, "waiting for 2 GPUs")
    pools.release(first)
    assert pools.try_reserve({"gpus": 2})[0] == {"gpus": [0, 1]}


def test_impossible_gpu_request_is_a_job_error(store, scheduler):
    job = submit(store, scheduler, Task(id="t", name="T", tool="fake_tool", args=[], resources={"gpus": 1}))
    wait_until(lambda: job.status == Status.ERROR)
    assert "this machine has 0" in job.tasks[0].error["message"]
