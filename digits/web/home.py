"""The home page: every job, newest first, updated live."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from flask import Blueprint, render_template

from digits import __version__
from digits.jobs import Job, JobStore, Status
from digits.models.frameworks import framework_title
from digits.web.compare import model_parameters, training_time
from digits.web.services import current_services

blueprint = Blueprint("home", __name__)


@lru_cache(maxsize=4096)
def _folder_size(directory: str, stamp: float) -> int:
    """Bytes of the files under ``directory``; ``stamp`` (when the job last changed status) keys the cache,
    so a finished dataset's folder is walked once, not at every visit of the home page."""
    total = 0
    for root, _dirs, files in os.walk(directory):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass  # removed while we walked: it no longer counts
    return total


def _dataset_columns(job: Job) -> dict[str, Any]:
    from digits.datasets.generic import dataset_info

    try:
        entries = dataset_info(job).entries
    except (OSError, ValueError, KeyError):
        entries = {}
    finished = job.status in Status.FINISHED and bool(job.status_history)
    size = _folder_size(job.directory, job.status_history[-1][1]) if finished and Path(job.directory).is_dir() else None
    return {"entries": sum(entries.values()) if entries else None, "size": size}


def _model_columns(job: Job, store: JobStore) -> dict[str, Any]:
    parameters = model_parameters(job, store)
    return {
        "dataset": parameters["dataset"],
        "dataset_id": job.depends_on_jobs[0] if job.depends_on_jobs else None,
        "network": parameters["network"],
        "framework": framework_title(parameters["framework"]),
        "epochs": parameters["epochs"],
        "started": training_time(job)[0],
        "duration": parameters["duration"],
        "best_val_accuracy": parameters["best_val_accuracy"],
    }


def _queue_columns(job: Job) -> dict[str, Any]:
    """Where the job runs and what it waits for: the cluster nodes of its running tasks (of every task that ran,
    once none runs), and the scheduler's words for what its first waiting task needs."""
    placed = sorted((t for t in job.tasks if t.started and t.assigned.get("node_name")), key=lambda t: t.started)
    running = [t for t in placed if t.status == Status.RUNNING]
    nodes = list(dict.fromkeys(t.assigned["node_name"] for t in running or placed))
    waiting = next((t.waiting_for for t in job.tasks if t.status == Status.WAITING and t.waiting_for), None)
    return {"node": ", ".join(nodes) or None, "waiting_for": waiting}


def job_lists(store: JobStore) -> dict[str, list[dict]]:
    """The home page's three tables: each job's summary plus the columns of its table (``entries`` and ``size``
    of datasets; ``dataset``, ``network``, ``framework``, ``epochs``, ``started``, ``duration`` and
    ``best_val_accuracy`` of models; ``node`` and ``waiting_for`` of both)."""
    with store.lock:
        jobs = [(Job.from_dict(job.to_dict()), job.summary()) for job in store.all()]
    # Outside the lock: the columns read the disk (metrics files, folder sizes); the scheduler must not wait.
    for job, summary in jobs:
        summary.update(_queue_columns(job))
        if job.type == "dataset":
            summary.update(_dataset_columns(job))
        elif job.type == "model":
            summary.update(_model_columns(job, store))
    jobs = [summary for _job, summary in jobs]
    return {
        "datasets": [j for j in jobs if j["type"] == "dataset"],
        "models": [j for j in jobs if j["type"] == "model"],
        "pretrained_models": [j for j in jobs if j["type"] == "pretrained"],
    }


def cluster_state() -> dict[str, Any] | None:
    """The Ray cluster as the home page shows it (its address, what stops the server from using it, each node
    with what it has and what DIGITS' tasks hold); None when tasks run on this machine."""
    services = current_services()
    return services.scheduler.describe() if services.config.cluster else None


@blueprint.route("/")
def index():
    return render_template("home.html", jobs=job_lists(current_services().store), cluster=cluster_state())


@blueprint.route("/index.json")
def index_json():
    return {"version": __version__, **job_lists(current_services().store), "cluster": cluster_state()}
