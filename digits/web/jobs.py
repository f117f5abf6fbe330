"""Actions every job has, whatever its kind: status, rename, notes, group, abort, delete, clone, logs."""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, abort, redirect, request, send_file, url_for
from werkzeug.datastructures import CombinedMultiDict

from digits import datasets
from digits.auth import require_owner
from digits.inference import jobs as inference_jobs
from digits.jobs import DeleteRefused, Job
from digits.jobs.creation import FormInvalid, JobKind
from digits.web.responses import wants_json
from digits.web.services import current_services

blueprint = Blueprint("jobs", __name__)

EDITABLE_FIELDS = ("name", "notes", "group")
SHOW_ENDPOINTS = {
    "dataset": "datasets.show",
    "model": "models.show",
    "inference": "inference.show_job",
    "pretrained": "pretrained.show",
}


def kind_or_404(kinds: dict[str, JobKind], kind: str, job_type: str) -> JobKind:
    """The kind of dataset or model a URL names, or a 404 listing the kinds this server has."""
    if kind not in kinds:
        abort(404, description=f"No {job_type} kind {kind!r}; this server has {', '.join(kinds)}.")
    return kinds[kind]


def form_data() -> CombinedMultiDict:
    """The request's form fields and uploaded files, as a kind's forms read them."""
    return CombinedMultiDict([request.files, request.form])


def create_and_submit(create: Callable[[], list[Job]], render_invalid: Callable, show_endpoint: str):
    """Run a creation path, queue what it made and answer: the job (a sweep's jobs) as JSON, or its page.

    ``render_invalid(forms, status)`` renders the creation page again when the data did not validate.
    """
    try:
        jobs = create()
    except FormInvalid as invalid:
        return ({"errors": invalid.errors}, 400) if wants_json() else render_invalid(invalid.forms, 400)
    for job in jobs:
        current_services().scheduler.submit(job)
    if wants_json():
        answers = [{"id": j.id, "name": j.name, "status": j.status} for j in jobs]
        return answers[0] if len(answers) == 1 else {"jobs": answers}
    return redirect(url_for(show_endpoint, job_id=jobs[0].id) if len(jobs) == 1 else url_for("home.index"))


def get_job(job_id: str, job_type: str | None = None) -> Job:
    """The job, or a 404 that says which id was not found."""
    job = current_services().store.get(job_id)
    if job is None or (job_type and job.type != job_type):
        abort(404, description=f"No {job_type or 'job'} with id {job_id!r}.")
    return job


@blueprint.route("/jobs/<job_id>/status")
@blueprint.route("/datasets/<job_id>/status")
@blueprint.route("/models/<job_id>/status")
def status(job_id: str):
    job = get_job(job_id)
    error = job.error
    return {"status": job.status, "type": job.type, "name": job.name, "error": error["message"] if error else None}


@blueprint.route("/jobs/<job_id>", methods=["PUT", "POST"])
def edit(job_id: str):
    """Change a job's name, notes or group (JSON body or form fields)."""
    job = get_job(job_id)
    require_owner(job)
    changes = request.get_json(silent=True) or request.form
    values = {field: str(changes[field]).strip() for field in EDITABLE_FIELDS if field in changes}
    if "name" in values and not values["name"]:
        return {"errors": {"name": ["A job needs a name."]}}, 400
    if not values:
        return {"errors": f"Send one of: {', '.join(EDITABLE_FIELDS)}."}, 400
    services = current_services()
    services.store.update(job, **values)
    services.publisher.job_changed(job, None)
    return job.summary()


@blueprint.route("/jobs/<job_id>/abort", methods=["POST"])
@blueprint.route("/datasets/<job_id>/abort", methods=["POST"])
@blueprint.route("/models/<job_id>/abort", methods=["POST"])
def abort_job(job_id: str):
    job = get_job(job_id)
    require_owner(job)
    current_services().scheduler.abort(job)
    return {"id": job.id, "status": job.status}


@blueprint.route("/jobs/<job_id>", methods=["DELETE"])
@blueprint.route("/datasets/<job_id>", methods=["DELETE"])
@blueprint.route("/models/<job_id>", methods=["DELETE"])
def delete(job_id: str):
    job = get_job(job_id)
    require_owner(job)
    services = current_services()
    if services.store.dependents(job):
        return _refused(job, services.store.dependents(job))
    services.scheduler.abort(job, wait=True)
    # A model's background inference jobs go with it (they only name it, so they never block the delete).
    for inference in inference_jobs.of_model(services.store, job):
        services.scheduler.abort(inference, wait=True)
        services.store.delete(inference)
        services.publisher.job_deleted(inference)
    try:
        services.store.delete(job)
    except DeleteRefused as refused:
        return _refused(job, refused.dependents)
    services.publisher.job_deleted(job)
    return {"id": job.id, "deleted": True}


def _refused(job: Job, dependents: list[Job]):
    refused = DeleteRefused(job, dependents)
    listed = [{"id": d.id, "name": d.name, "type": d.type} for d in dependents]
    return {"errors": str(refused), "dependents": listed}, 409


@blueprint.route("/clone/<job_id>")
def clone(job_id: str):
    """The job's creation form again, filled with what was sent the first time."""
    job = get_job(job_id)
    if job.type not in ("dataset", "model"):
        abort(400, description=f"A {job.type} job has no creation form to clone.")
    if job.type == "dataset" and job.kind not in datasets.KINDS:
        return redirect(url_for("datasets.new_generic", clone=job.id))  # a data extension's form
    return redirect(url_for(f"{job.type}s.new", kind=job.kind, clone=job.id))


@blueprint.route("/jobs/<job_id>/log/<task_id>")
def task_log(job_id: str, task_id: str):
    job = get_job(job_id)
    task = next((t for t in job.tasks if t.id == task_id), None)
    if task is None:
        abort(404, description=f"Job {job_id} has no task {task_id!r}.")
    path = f"{job.directory}/{task.log_name}"
    try:
        return send_file(path, mimetype="text/plain", max_age=0)
    except FileNotFoundError:
        abort(404, description=f"Task {task.name} has not written a log yet.")


@blueprint.route("/jobs/<job_id>")
def show(job_id: str):
    job = get_job(job_id)
    return redirect(url_for(SHOW_ENDPOINTS[job.type], job_id=job.id))
