"""Model pages and their JSON twins: new, create (one job per sweep point), show, resume, LR preview."""

from __future__ import annotations

import glob
import threading
import time
from functools import partial
from pathlib import Path

from flask import Blueprint, Response, abort, render_template, request, url_for

from digits import models
from digits.auth import can_change, current_username, login_required, require_owner
from digits.datasets.generic import dataset_info
from digits.inference.archive import EXPORT_FORMATS
from digits.jobs import Job, Status, lists
from digits.jobs.creation import as_multidict
from digits.lr_policy import LRPolicy
from digits.models import image_classification as classification
from digits.models.frameworks import DEFAULT as FRAMEWORK_DEFAULT
from digits.models.frameworks import FRAMEWORKS, available_frameworks, framework_of, framework_title
from digits.scheduler.local import log_tail
from digits.visualize import NetworkBuildError, parse_shape, visualize_network
from digits.web.jobs import create_and_submit, form_data, get_job, kind_or_404
from digits.web.limits import current_limits
from digits.web.responses import wants_json
from digits.web.services import current_services

blueprint = Blueprint("models", __name__)

LOG_TAIL_LINES = 40


def _render_form(kind: models.ModelKind, forms: list, status: int = 200):
    store = current_services().store
    frameworks = available_frameworks()
    datasets = []
    for job in store.all(lambda j: j.type == "dataset" and j.kind in kind.dataset_kinds and j.status == Status.DONE):
        info = dataset_info(job)
        datasets.append(
            {
                "id": job.id,
                "name": job.name,
                "status": job.status,
                "image_dimensions": info.feature_dims,
                "nclasses": len(info.labels),
                "entries": info.entries,
            }
        )
    context = {
        "form": forms[0],
        "kind": kind,
        "action": url_for("models.create", kind=kind.id),
        "datasets": datasets,
        "standard_networks": [
            {"id": n, "title": t, "description": d, "frameworks": [f.id for f in frameworks if f.has_network(n)]}
            for n, t, d in kind.standard_networks
        ],
        # The form's framework tabs: those this server has, each with what its network must define.
        "frameworks": [
            {"id": f.id, "title": f.title, "contract": f.contract, "networks": [n for n, _, _ in kind.networks_of(f)]}
            for f in frameworks
        ],
        "previous_models": [
            {
                "id": j.id,
                "name": j.name,
                "snapshots": [s["epoch"] for s in classification.snapshots_of(j)],
                "framework": framework_title(j.form.get("framework")),
            }
            for j in models.previous_models(store)
        ],
        "pretrained_models": [classification.pretrained_summary(j) for j in models.pretrained_models(store)],
        "gpus": [{"index": g.index, "name": g.name} for g in current_services().pools.gpus],
        "lr_preview_url": url_for("models.lr_preview"),
        "network_source_url": url_for("models.network_source", name="__NAME__"),
    }
    return render_template(kind.template, **context), status


def new(kind: str):
    kind = kind_or_404(models.KINDS, kind, "model")
    clone_of = request.args.get("clone")
    data = as_multidict(get_job(clone_of, "model").form) if clone_of else None
    return _render_form(kind, kind.forms(data, store=current_services().store))


@login_required
def create(kind: str):
    """Validate the form and make one job per (learning rate, batch size) of the sweep."""
    kind = kind_or_404(models.KINDS, kind, "model")
    services, data, owner = current_services(), form_data(), current_username()
    return create_and_submit(
        lambda: models.create(
            services.store,
            kind,
            data,
            owner,
            services.pools,
            roots=services.config.data_roots,
            max_sweep=services.config.max_sweep,
        ),
        partial(_render_form, kind),
        "models.show",
    )


for _kind in models.KINDS.values():
    blueprint.add_url_rule(f"/models/{_kind.path}/new", "new", new, defaults={"kind": _kind.id})
    for _suffix in ("", ".json"):
        blueprint.add_url_rule(
            f"/models/{_kind.path}{_suffix}", "create", create, methods=["POST"], defaults={"kind": _kind.id}
        )


def model_json(job: Job) -> dict:
    """The model as its page and its JSON twin show it."""
    services = current_services()
    with services.store.lock:
        data = services.store.snapshot(job)
        dependents = [{"id": d.id, "name": d.name, "type": d.type} for d in services.store.dependents(job)]
    train = data["tasks"][0]
    dataset = services.store.get(job.depends_on_jobs[0]) if job.depends_on_jobs else None
    form = data.pop("form", {})
    snapshots = train["data"].get("snapshots", [])
    log_path = Path(job.directory) / job.tasks[0].log_name
    data.update(
        status=job.status,
        progress=job.progress,
        error=job.error,
        dependents=dependents,
        dataset={"id": dataset.id, "name": dataset.name, "url": url_for("datasets.show", job_id=dataset.id)}
        if dataset
        else None,
        framework=framework_title(form.get("framework")),
        export_formats=EXPORT_FORMATS.get(form.get("framework") or FRAMEWORK_DEFAULT, ()),
        network={
            "method": form.get("method", "standard"),
            "name": form.get("standard_networks") if form.get("method", "standard") == "standard" else "custom",
            "source_url": url_for("models.job_network", job_id=job.id),
        },
        solver={k: form.get(k) for k in ("train_epochs", "batch_size", "solver_type", "learning_rate", "lr_policy")},
        # Read from the task's metrics file (old jobs: from job.json), the lock released.
        metrics=lists.read_all(job.directory, train["id"], train["data"], "metrics"),
        snapshots=[s["epoch"] for s in snapshots],
        snapshot_files=[{**s, "size": snapshot_bytes(Path(job.directory), s.get("path", ""))} for s in snapshots],
        best_epoch=train["data"].get("best_epoch"),
        status_message=train["data"].get("status_message"),
        early_stopping={
            "metric": form.get("early_stopping_metric") or None,
            "patience": form.get("early_stopping_patience") or None,
            "best_value": train["data"].get("best_value"),
            "stopped_early": bool(train["data"].get("stopped_early")),
        },
        can_resume=job.status in (Status.ABORTED, Status.ERROR) and bool(snapshots),
        hardware=_hardware(job),
        log_tail=log_tail(log_path, LOG_TAIL_LINES),
    )
    for task in data["tasks"]:
        task.pop("data", None)
    return data


def snapshot_bytes(directory: Path, path: str) -> int | None:
    """The size on disk of a snapshot (a file, or a TensorFlow checkpoint prefix and its ``.index`` and
    ``.data-*`` files), ``path`` relative to the job's ``directory``; None when it is gone."""
    if not path:
        return None
    prefix = directory / path
    files = [prefix, *prefix.parent.glob(glob.escape(prefix.name) + ".*")]
    sizes = [f.stat().st_size for f in files if f.is_file()]
    return sum(sizes) if sizes else None


# A reading blocks ~50 ms (psutil samples CPU over an interval; NVML per GPU): one per job and second serves
# every page and poller of that job (50 open pages made it a third of each answer's time).
HARDWARE_MAX_AGE = 1.0
_hardware_readings: dict[tuple[str, float], tuple[float, dict | None]] = {}
_hardware_lock = threading.Lock()


def _hardware(job: Job) -> dict | None:
    """What the training uses right now, read where it runs (this machine or its cluster node): its GPUs, and
    its process's CPU and memory (at most a second old)."""
    task = job.tasks[0]
    if task.status != Status.RUNNING:
        return None
    with _hardware_lock:
        now = time.monotonic()
        key = (job.id, task.started or 0.0)
        taken, reading = _hardware_readings.get(key, (-HARDWARE_MAX_AGE, None))
        if now - taken >= HARDWARE_MAX_AGE:
            reading = current_services().scheduler.usage(job, task)
            # Readings of ended runs go.
            for old in [k for k, (at, _) in _hardware_readings.items() if now - at > 60]:
                del _hardware_readings[old]
            _hardware_readings[key] = (now, reading)
    return reading


@blueprint.route("/models/<job_id>")
def show(job_id: str):
    job = get_job(job_id, "model")
    data = model_json(job)
    if wants_json():
        return data
    return render_template("models/show.html", job=data, can_edit=can_change(job))


@blueprint.route("/models/<job_id>.json")
def show_json(job_id: str):
    return model_json(get_job(job_id, "model"))


@blueprint.route("/models/<job_id>/network.py")
def job_network(job_id: str):
    job = get_job(job_id, "model")
    return Response((Path(job.directory) / "network.py").read_text(), mimetype="text/plain")


@blueprint.route("/models/<job_id>/resume", methods=["POST"])
def resume(job_id: str):
    """Continue an aborted or interrupted job from its last snapshot, optimizer state included."""
    job = get_job(job_id, "model")
    require_owner(job)
    if job.status not in (Status.ABORTED, Status.ERROR) or not job.tasks[0].data.get("snapshots"):
        abort(400, description="Only an aborted or failed model with a snapshot can be resumed.")
    current_services().scheduler.resume(job, ["--resume"])
    return {"id": job.id, "status": job.status}


@blueprint.route("/models/networks/<name>.py")
def network_source(name: str):
    """The source of a standard network, in the framework ``?framework=`` names (TensorFlow by default)."""
    framework = request.args.get("framework") or "tensorflow"
    if framework not in FRAMEWORKS:
        abort(404, description=f"No framework {framework!r}; there are: {', '.join(FRAMEWORKS)}.")
    try:
        return Response(classification.standard_network_source(name, framework), mimetype="text/plain")
    except KeyError:
        abort(404, description=f"No standard network {name!r} in {framework_of(framework).title}.")


@blueprint.route("/models/visualize-lr")
@blueprint.route("/models/visualize-lr.json")
def lr_preview():
    """The learning rate over training for the solver fields given: ``{"epochs": [...], "lr": [...]}``."""
    args = request.args.to_dict()
    try:
        base = float((args.get("learning_rate") or "0.01").split(",")[0])
        epochs = float(args.get("train_epochs") or 30)
        policy: LRPolicy = classification.lr_policy_of(args, base)
    except ValueError as exc:
        return {"errors": str(exc)}, 400
    return policy.curve(epochs)


def _visualized_input(fields) -> tuple[list[int], int | None]:
    """The [H, W, C] shape and class count Visualize builds for: the ``dataset``'s (or ``input_shape``), with
    ``crop_size`` and ``nclasses`` applied; ValueError saying what is wrong."""
    nclasses = None
    if (fields.get("dataset") or "").strip():
        info = dataset_info(get_job(fields["dataset"].strip(), "dataset"))
        shape = parse_shape(",".join(map(str, info.feature_dims or [])))
        nclasses = len(info.labels or []) or None
    else:
        shape = parse_shape(fields.get("input_shape") or "")
    if (fields.get("crop_size") or "").strip():
        shape[:2] = [int(fields["crop_size"])] * 2
    if (fields.get("nclasses") or "").strip():
        nclasses = int(fields["nclasses"])
    return shape, nclasses


@blueprint.route("/models/visualize-network", methods=["POST"])
@blueprint.route("/models/visualize-network.json", methods=["POST"])
def visualize_network_view():
    """Build ``custom_network`` in a child process for the images of ``dataset`` (or ``input_shape`` H,W,C).

    Other fields: ``framework`` (``tensorflow``, the default, or ``torch``: one this server has), ``nclasses``
    (default: the dataset's, else 10), ``crop_size``. Answers the network's layers
    ``{"layers": [{"name", "type", "output_shape", "params"}], "total_params": N, ...}``, or 400 with
    ``{"errors": message, "user_line": n, "user_source_line": text}`` when it does not build.
    """
    fields = request.form
    framework = FRAMEWORKS.get(fields.get("framework") or FRAMEWORK_DEFAULT)
    if framework is None or not framework.available():
        ids = ", ".join(f.id for f in available_frameworks())
        return {"errors": {"framework": [f"Choose a framework this server has: {ids}."]}}, 400
    source = fields.get("custom_network") or ""
    if not source.strip():
        return {"errors": {"custom_network": [f"Write a network first: {framework.contract}."]}}, 400
    try:
        shape, nclasses = _visualized_input(fields)
    except ValueError as exc:
        return {"errors": {"input_shape": [str(exc)]}}, 400
    try:
        return visualize_network(source, shape, nclasses or 10, slots=current_limits().visualizations,
                                 framework=framework.id)  # fmt: skip
    except NetworkBuildError as exc:
        return {"errors": str(exc), **exc.as_dict()}, 400
