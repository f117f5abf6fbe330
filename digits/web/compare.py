"""The Compare page: several models' curves overlaid, by epoch or by wall time, without TensorBoard."""

from __future__ import annotations

from flask import Blueprint, render_template, request, url_for

from digits.jobs import Job
from digits.web.responses import wants_json
from digits.web.services import current_services
from digits.web.tensorboard import selected_models

blueprint = Blueprint("compare", __name__)


def _curves(job: Job) -> dict:
    """A model's metrics as points: ``epoch``, ``time`` (seconds since training started, when recorded), values."""
    started = next((at for status, at in job.status_history if status == "Running"), None)
    points = []
    for entry in job.tasks[0].data.get("metrics", []) if job.tasks else []:
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
    """The selected models' curves, one per model, for any metric they report (``train/loss``, ``val/accuracy``)."""
    jobs = selected_models(request.args.getlist("job_id"))
    with current_services().store.lock:
        models = [_curves(job) for job in jobs]
    metrics = sorted({name for m in models for p in m["points"] for name in p["values"]})
    data = {"models": models, "metrics": metrics}
    if wants_json():
        return data
    tensorboard_url = url_for("tensorboard.open_tensorboard", job_id=[job.id for job in jobs])
    return render_template("models/compare.html", data=data, tensorboard_url=tensorboard_url)
