"""The Compare page: several models' curves overlaid, by epoch or by wall time, and their parameters side by side."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request, url_for

from digits.jobs import Job, JobStore, lists
from digits.models.frameworks import framework_title
from digits.web.responses import wants_json
from digits.web.services import current_services
from digits.web.tensorboard import selected_models

blueprint = Blueprint("compare", __name__)

# The rows of the parameters table: (key, title), in the order a reader explains two curves by.
PARAMETERS = [
    ("dataset", "Dataset"), ("network", "Network"), ("framework", "Framework"), ("epochs", "Epochs"),
    ("batch_size", "Batch size"), ("solver", "Solver"), ("learning_rate", "Learning rate"),
    ("lr_policy", "LR policy"), ("seed", "Random seed"), ("best_val_accuracy", "Best val accuracy"),
    ("best_val_loss", "Best val loss"), ("duration", "Duration"), ("status", "Status"),
]  # fmt: skip


def training_time(job: Job) -> tuple[float | None, float | None]:
    """When the model's training started and, once it ended, how long it took in seconds: ``(started, duration)``."""
    task = job.tasks[0] if job.tasks else None
    if task is None or task.started is None:
        return None, None
    duration = round(task.finished - task.started, 1) if task.finished is not None else None
    return task.started, duration


def metrics_of(job: Job) -> list[dict]:
    """The metrics events of a model's training task, in the order they came: read from the task's metrics
    file (a job saved before those files: from its job.json). Call it without the store's lock held."""
    task = job.tasks[0] if job.tasks else None
    return lists.read_all(job.directory, task.id, task.data, "metrics") if task else []


def best_validation(job: Job, name: str) -> float | None:
    """The best ``val/<name>`` the model reported (highest accuracy, lowest anything else), or None."""
    task = job.tasks[0] if job.tasks else None
    if task is None:
        return None
    if lists.BEST_VAL_KEY in task.data:  # kept in job.json as the metrics came
        return task.data[lists.BEST_VAL_KEY].get(name)
    best: dict[str, float] = {}
    for entry in task.data.get("metrics", []):  # a job saved before the metrics files
        lists.note_best(best, entry)
    return best.get(name)


def model_parameters(job: Job, store: JobStore) -> dict[str, Any]:
    """What tells one training run from another: its dataset, network, solver, seed, best validation and time."""
    form = job.form
    dataset = store.get(job.depends_on_jobs[0]) if job.depends_on_jobs else None
    method = form.get("method", "standard")
    network = form.get("standard_networks") if method == "standard" else method
    return {
        "dataset": dataset.name if dataset else None,
        "network": network or None,
        "framework": framework_title(form.get("framework")),
        "epochs": form.get("train_epochs") or None,
        "batch_size": form.get("batch_size") or None,
        "solver": form.get("solver_type") or None,
        "learning_rate": form.get("learning_rate") or None,
        "lr_policy": form.get("lr_policy") or None,
        "seed": form.get("random_seed") or None,
        "best_val_accuracy": best_validation(job, "accuracy"),
        "best_val_loss": best_validation(job, "loss"),
        "duration": training_time(job)[1],
        "status": job.status,
    }


def _curves(job: Job) -> dict:
    """A model's metrics as points: ``epoch``, ``time`` (seconds since training started, when recorded), values."""
    started = next((at for status, at in job.status_history if status == "Running"), None)
    points = []
    for entry in metrics_of(job):
        values = {f"{stage}/{name}": value for stage in ("train", "val")
                  for name, value in (entry.get(stage) or {}).items()}  # fmt: skip
        if entry.get("lr") is not None:
            values["lr"] = entry["lr"]
        stamp = entry.get("time")
        started = started if started is not None else stamp
        elapsed = round(stamp - started, 3) if stamp is not None and started is not None else None
        points.append({"epoch": entry.get("epoch"), "time": elapsed, "values": values})
    return {
        "id": job.id,
        "name": job.name,
        "status": job.status,
        "url": url_for("models.show", job_id=job.id),
        "points": points,
    }


@blueprint.route("/models/compare.json")
@blueprint.route("/models/compare")
def compare():
    """The selected models' curves, one per model, for any metric they report (``train/loss``, ``val/accuracy``),
    with each model's ``parameters`` (:func:`model_parameters`) and the table's rows in ``parameter_names``."""
    jobs = selected_models(request.args.getlist("job_id"))
    store = current_services().store
    with store.lock:
        copies = [Job.from_dict(store.snapshot(job)) for job in jobs]
    # The curves come from the metrics files, read with the lock released.
    models = [{**_curves(job), "parameters": model_parameters(job, store)} for job in copies]
    metrics = sorted({name for m in models for p in m["points"] for name in p["values"]})
    data = {"models": models, "metrics": metrics, "parameter_names": PARAMETERS}
    if wants_json():
        return data
    tensorboard_url = url_for("tensorboard.open_tensorboard", job_id=[job.id for job in jobs])
    return render_template("models/compare.html", data=data, tensorboard_url=tensorboard_url)
