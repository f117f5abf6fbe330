"""Bounded job files: growing lists (skipped entries, metrics) live in JSON-lines files beside job.json.

job.json keeps their counts whatever a job does; the pages and their JSON show a count and a page of entries;
jobs saved before the files existed (lists inside job.json) still load and show.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from helpers import logged_in_client

from digits.jobs import Job, JobStore, Status, Task, lists, new_job_id
from digits.scheduler import LocalScheduler, ResourcePools
from digits.scheduler.local import TaskRun

MILLION = 1_000_000


def dataset_job(jobs_dir: Path, **task_data) -> tuple[JobStore, Job]:
    store = JobStore(jobs_dir)
    task = Task(id="create_db_train", name="Create DB (train)", tool="digits.tools.create_db", args=[],
                data=dict(task_data))  # fmt: skip
    job = Job(id=new_job_id(), type="dataset", kind="image-classification", name="skips", username="fred",
              directory="", tasks=[task], form={"resize_height": "28", "resize_width": "28"})  # fmt: skip
    store.add(job)
    return store, job


def fold(store: JobStore, job: Job, events: list[dict] | None = None, count: int = 0) -> TaskRun:
    """Fold events through the scheduler's event code (what a tool's JSON lines go through), no process."""
    scheduler = LocalScheduler(store, ResourcePools([], cpu_slots=1))
    task = job.tasks[0]
    task.status = Status.RUNNING
    run = TaskRun(scheduler, job, task)
    for event in events or ():
        run._on_event(dict(event))
    for i in range(count):
        path = f"/data/missing/{i:07d}.png"
        run._on_event({"event": "skipped", "path": path, "label": "cat", "reason": "no such file"})
    run.lists.close()
    with store.lock:
        task.status = Status.DONE
        task.progress = 1.0
        job.record_status()
    store.save(job)
    return run


def test_a_million_skipped_entries_keep_job_json_small_and_pages_show_a_page(tmp_path, make_app):
    jobs_dir = tmp_path / "jobs"
    store, job = dataset_job(jobs_dir)
    start = time.monotonic()
    fold(store, job, count=MILLION)
    seconds = time.monotonic() - start
    print(f"folded {MILLION:,} skipped events in {seconds:.1f} s")
    assert seconds < 30
    assert store.flush()
    job_file = Path(job.directory) / "job.json"
    size = job_file.stat().st_size
    listed = lists.list_path(job.directory, "create_db_train", "skipped_images").stat().st_size
    print(f"job.json: {size:,} bytes; skipped list file: {listed:,} bytes")
    assert size < 64 * 1024
    saved = json.loads(job_file.read_text())
    assert saved["tasks"][0]["data"]["lists"] == {"skipped_images": MILLION}
    assert "skipped_images" not in saved["tasks"][0]["data"]

    client = logged_in_client(make_app(jobs_dir))
    answer = client.get(f"/datasets/{job.id}.json")
    assert answer.status_code == 200
    assert len(answer.data) < 64 * 1024
    data = answer.get_json()
    assert data["skipped_total"] == MILLION and data["skipped_page"] == 1
    assert len(data["skipped"]) == lists.PAGE_SIZE
    assert data["skipped"][0] == {"stage": "train", "path": "/data/missing/0000000.png", "label": "cat",
                                  "reason": "no such file"}  # fmt: skip
    second = client.get(f"/datasets/{job.id}.json?skipped_page=2").get_json()["skipped"]
    assert [Path(s["path"]).name for s in second[:2]] == ["0000100.png", "0000101.png"]
    last = client.get(f"/datasets/{job.id}.json?skipped_page={MILLION // lists.PAGE_SIZE}").get_json()["skipped"]
    assert Path(last[-1]["path"]).name == f"{MILLION - 1:07d}.png"
    assert client.get(f"/datasets/{job.id}.json?skipped_page=nonsense").get_json()["skipped_page"] == 1
    page = client.get(f"/datasets/{job.id}")
    assert page.status_code == 200 and len(page.data) < 256 * 1024
    html = page.get_data(as_text=True)
    assert '"skipped_total": 1000000' in html and "0000099.png" in html and "0000100.png" not in html


def test_metrics_go_to_their_file_with_the_best_values_in_job_json(tmp_path):
    store, job = dataset_job(tmp_path / "jobs")
    events = [{"event": "metrics", "epoch": e / 4, "train": {"loss": 1 / (e + 1)}} for e in range(8)]
    events += [{"event": "metrics", "epoch": 1.0, "val": {"loss": 0.5, "accuracy": 0.8}},
               {"event": "metrics", "epoch": 2.0, "val": {"loss": 0.6, "accuracy": 0.9}}]  # fmt: skip
    fold(store, job, events)
    data = job.tasks[0].data
    assert data["lists"] == {"metrics": 10} and "metrics" not in data
    assert data["best_val"] == {"loss": 0.5, "accuracy": 0.9}
    entries = lists.read_all(job.directory, "create_db_train", data, "metrics")
    assert [e["epoch"] for e in entries] == [e["epoch"] for e in events] and all("time" in e for e in entries)


def old_format_jobs(jobs_dir: Path) -> tuple[str, str]:
    """A dataset and a model as DIGITS saved them before the list files: their lists inside job.json."""
    dataset_id, model_id = "20200101-000000-aaaa", "20200101-000001-bbbb"
    skipped = [{"event": "skipped", "path": f"/old/{i}.png", "label": "dog", "reason": "cannot be decoded"}
               for i in range(3)]  # fmt: skip
    metrics = [{"epoch": 0.5, "train": {"loss": 2.0}, "lr": 0.01, "time": 1000.0},
               {"epoch": 1.0, "train": {"loss": 1.0}, "lr": 0.01, "time": 1010.0},
               {"epoch": 1.0, "val": {"loss": 1.2, "accuracy": 0.7}, "time": 1011.0}]  # fmt: skip
    done = [["Initialized", 999.0], ["Running", 1000.0], ["Done", 1012.0]]
    dataset = Job(id=dataset_id, type="dataset", kind="image-classification", name="old dataset", username="fred",
                  directory="", form={}, tasks=[Task(id="create_db_train", name="Create DB (train)", tool="x", args=[],
                  status=Status.DONE, progress=1.0, data={"skipped_images": skipped, "skipped": {"dog": 3},
                  "entries": 7})])  # fmt: skip
    model = Job(id=model_id, type="model", kind="image-classification", name="old model", username="fred",
                directory="", form={"method": "standard", "standard_networks": "lenet"}, depends_on_jobs=[dataset_id],
                tasks=[Task(id="train", name="Train", tool="x", args=[], status=Status.DONE, progress=1.0,
                data={"metrics": metrics, "snapshots": [{"epoch": 1.0, "path": "snapshot_1.0.ckpt"}]})])  # fmt: skip
    for job in (dataset, model):
        job.status_history = [tuple(s) for s in done]
        (jobs_dir / job.id).mkdir(parents=True)
        (jobs_dir / job.id / "job.json").write_text(json.dumps(job.to_dict()))
    return dataset_id, model_id


def test_jobs_saved_with_their_lists_inside_still_load_and_show(tmp_path, make_app):
    jobs_dir = tmp_path / "jobs"
    dataset_id, model_id = old_format_jobs(jobs_dir)
    client = logged_in_client(make_app(jobs_dir))
    dataset = client.get(f"/datasets/{dataset_id}.json").get_json()
    assert dataset["skipped_total"] == 3
    assert [s["path"] for s in dataset["skipped"]] == ["/old/0.png", "/old/1.png", "/old/2.png"]
    assert all(s["stage"] == "train" for s in dataset["skipped"])
    assert client.get(f"/datasets/{dataset_id}").status_code == 200
    model = client.get(f"/models/{model_id}.json").get_json()
    assert [m["epoch"] for m in model["metrics"]] == [0.5, 1.0, 1.0] and model["snapshots"] == [1.0]
    assert client.get(f"/models/{model_id}").status_code == 200
    compare = client.get(f"/models/compare.json?job_id={model_id}").get_json()
    (curves,) = compare["models"]
    assert [p["time"] for p in curves["points"]] == [0.0, 10.0, 11.0]
    assert curves["parameters"]["best_val_accuracy"] == 0.7
    assert {"train/loss", "val/accuracy", "lr"} <= set(compare["metrics"])


def test_an_old_jobs_list_moves_into_its_file_when_the_task_appends_again(tmp_path):
    old = [{"epoch": 1.0, "train": {"loss": 1.0}, "time": 1.0}, {"epoch": 1.0, "val": {"accuracy": 0.5}, "time": 2.0}]
    store, job = dataset_job(tmp_path / "jobs", metrics=old)
    fold(store, job, [{"event": "metrics", "epoch": 2.0, "val": {"accuracy": 0.4}}])
    data = job.tasks[0].data
    assert "metrics" not in data and data["lists"] == {"metrics": 3} and data["best_val"] == {"accuracy": 0.5}
    entries = lists.read_all(job.directory, "create_db_train", data, "metrics")
    assert [e["epoch"] for e in entries] == [1.0, 1.0, 2.0]


def test_a_line_cut_short_is_no_entry_and_the_next_one_starts_a_line(tmp_path):
    store, job = dataset_job(tmp_path / "jobs")
    path = lists.list_path(job.directory, "create_db_train", "skipped_images")
    path.write_text('{"path": "/a.png", "reason": "x"}\n{"path": "/b.p')  # a crash (or a full disk) mid-line
    job.tasks[0].data["lists"] = {"skipped_images": 1}
    fold(store, job, count=2)
    entries = lists.read_page(job.directory, "create_db_train", job.tasks[0].data, "skipped_images")
    assert [Path(e["path"]).name for e in entries] == ["a.png", "0000000.png", "0000001.png"]
    assert job.tasks[0].data["lists"] == {"skipped_images": 3}
