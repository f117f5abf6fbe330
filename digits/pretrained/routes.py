"""Download, export and pretrained models: their pages and JSON twins.

- ``GET /models/<id>/download[.tar|.tar.gz|.zip]?snapshot_epoch=N``: a model archive (DIGITS' route; tar.gz
  by default), streamed. ``GET /pretrained_models/<id>/download[...]`` the same for a pretrained model.
- ``POST /models/<id>/export.zip`` with ``snapshot_epoch=N&format=savedmodel|torch-export|onnx``: the model's
  framework's own export (a SavedModel, a ``torch.export`` program) or ONNX, made by the framework's export tool
  in a child process, zipped. A POST: it runs a tool and writes into the job.
- ``POST /models/<id>/make_pretrained``, ``/pretrained_models/upload_archive``, ``/pretrained_models/upload``
  (and their ``.json`` twins) make a pretrained model; ``/pretrained_models/<id>`` shows it.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for

from digits.auth import can_change, current_username, login_required
from digits.form_fields import add_error
from digits.inference import archive
from digits.inference.spec import ModelSpec, SpecError, model_spec
from digits.jobs import Job
from digits.pretrained import jobs as pretrained
from digits.pretrained.forms import ArchiveForm, FilesForm
from digits.web import jobs as job_views
from digits.web.jobs import get_job
from digits.web.limits import current_limits
from digits.web.responses import wants_json
from digits.web.services import current_services

blueprint = Blueprint("pretrained", __name__)
# Where a view has a page and a .json twin, the page's rule is registered first (the lower decorator):
# url_for builds the first.


# -- download and export -------------------------------------------------------------------------------


def _format_or_404(extension: str) -> str:
    if extension not in archive.FORMATS:
        abort(404, description=f"No download format {extension!r}; use one of: {', '.join(archive.FORMATS)}.")
    return extension


def _spec_or_400(job: Job) -> ModelSpec:
    try:
        return model_spec(job, current_services().store, request.values.get("snapshot_epoch") or None)
    except SpecError as exc:
        abort(400, description=str(exc))


def _attachment(chunks, filename: str, mimetype: str) -> Response:
    return Response(chunks, mimetype=mimetype, headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@blueprint.route("/models/<job_id>/download", methods=["GET", "POST"], defaults={"extension": "tar.gz"})
@blueprint.route("/models/<job_id>/download.<extension>", methods=["GET", "POST"])
def download_model(job_id: str, extension: str):
    """The model's snapshot as an archive: network, labels, mean, checkpoint and ``info.json``."""
    job = get_job(job_id, "model")
    fmt = _format_or_404(extension)
    spec = _spec_or_400(job)
    dataset = current_services().store.get(job.form.get("dataset", ""))
    about = {"job_name": job.name, "job_id": job.id, "dataset_name": dataset.name if dataset else None}
    try:
        _, members = archive.model_members(spec, about)
    except SpecError as exc:
        abort(400, description=str(exc))
    name = archive.archive_name(job.name, spec.snapshot_epoch)
    return _attachment(archive.stream_archive(members, fmt), f"{name}.{fmt}", archive.FORMATS[fmt])


@blueprint.route("/pretrained_models/<job_id>/download", defaults={"extension": "tar.gz"})
@blueprint.route("/pretrained_models/<job_id>/download.<extension>")
def download_pretrained(job_id: str, extension: str):
    """The pretrained model as an archive of the same layout (it can be uploaded again elsewhere)."""
    job = get_job(job_id, pretrained.TYPE)
    fmt = _format_or_404(extension)
    _, members = pretrained.archive_members(job)
    return _attachment(archive.stream_archive(members, fmt), f"{archive.archive_name(job.name, None)}.{fmt}",
                       archive.FORMATS[fmt])  # fmt: skip


@blueprint.route("/models/<job_id>/export.zip", methods=["POST"], defaults={"job_type": "model"})
@blueprint.route("/pretrained_models/<job_id>/export.zip", methods=["POST"], defaults={"job_type": "pretrained"})
@login_required
def export(job_id: str, job_type: str):
    """The snapshot exported in ``format``, zipped: its framework's own (a TensorFlow SavedModel, a PyTorch
    ``torch.export`` program; the default) or ``onnx``.

    At most ``DIGITS_MAX_EXPORTS`` export tools run at once; past that the answer is 503 with ``Retry-After``.
    """
    job = get_job(job_id, job_type)
    spec = _spec_or_400(job)
    formats = archive.EXPORT_FORMATS[spec.framework]
    fmt = (request.values.get("format") or formats[0]).lower()
    if fmt not in formats:
        abort(400, description=f"No export format {fmt!r} for a {archive.FRAMEWORKS[spec.framework]} model; "
                               f"use one of: {', '.join(formats)}.")  # fmt: skip
    if spec.framework == "tensorflow" and fmt == "onnx" and importlib.util.find_spec("tf2onnx") is None:
        abort(501, description="ONNX export needs the tf2onnx package, which this server does not have "
                               "(pip install tf2onnx); the SavedModel export works without it.")  # fmt: skip
    try:
        exported = archive.export_model(spec, Path(job.directory) / "exports", fmt, slots=current_limits().exports)
    except archive.ExportError as exc:
        where = f" (network.py, line {exc.user_line})" if exc.user_line else ""
        abort(400 if exc.user_line else 500, description=f"Export failed: {exc}{where}")
    name = f"{archive.archive_name(job.name, spec.snapshot_epoch)}-{fmt}.zip"
    return _attachment(archive.stream_zip(archive.directory_members(exported)), name, "application/zip")


# -- making pretrained models ------------------------------------------------------------------------------


def _created(job: Job):
    current_services().publisher.job_changed(job, None)
    if wants_json():
        return {"id": job.id, "name": job.name, "status": job.status, "url": url_for("pretrained.show", job_id=job.id)}
    return redirect(url_for("pretrained.show", job_id=job.id))


@blueprint.route("/models/<job_id>/make_pretrained.json", methods=["POST"])
@blueprint.route("/models/<job_id>/make_pretrained", methods=["POST"])
@login_required
def make_pretrained(job_id: str):
    """A pretrained model from the model's snapshot (``snapshot_epoch``, the last by default), named ``name``."""
    model = get_job(job_id, "model")
    name = (request.form.get("name") or request.form.get("job_name") or "").strip()
    try:
        job = pretrained.from_snapshot(current_services().store, model, request.form.get("snapshot_epoch") or None,
                                       name, current_username())  # fmt: skip
    except SpecError as exc:
        abort(400, description=str(exc))
    return _created(job)


def _render_new(archive_form: ArchiveForm, files_form: FilesForm, status: int = 200):
    return render_template("pretrained/new.html", archive_form=archive_form, files_form=files_form), status


@blueprint.route("/pretrained_models/new")
def new():
    return _render_new(ArchiveForm(), FilesForm())


def _refused(form, other, field, message: str):
    add_error(field, message)
    if wants_json():
        return {"errors": form.errors}, 400
    forms = (form, other) if isinstance(form, ArchiveForm) else (other, form)
    return _render_new(*forms, status=400)


@blueprint.route("/pretrained_models/upload_archive.json", methods=["POST"])
@blueprint.route("/pretrained_models/upload_archive", methods=["POST"])
@login_required
def upload_archive():
    """A pretrained model from a DIGITS model archive (field ``archive``)."""
    form = ArchiveForm()
    upload = request.files.get("archive")
    if not form.validate() or not (upload and upload.filename):
        return _refused(form, FilesForm(formdata=None), form.archive, "Choose a model archive (tar, tar.gz or zip).")
    handle, saved = tempfile.mkstemp(prefix="archive-", dir=_scratch_dir())
    try:
        with os.fdopen(handle, "wb") as f:
            upload.save(f)
        config = current_services().config
        job = pretrained.from_archive(
            current_services().store, Path(saved), upload.filename, (form.job_name.data or "").strip(),
            current_username(), max_ratio=config.archive_max_ratio, max_members=config.archive_max_members,
        )  # fmt: skip
    except archive.ArchiveError as exc:
        return _refused(form, FilesForm(formdata=None), form.archive, f"{upload.filename}: {exc}")
    finally:
        os.unlink(saved)
    return _created(job)


def _uploads(form: FilesForm) -> dict:
    """The form's files: ``weights_file`` a list (possibly empty), the others an Upload or None."""
    uploads = {"weights_file": [pretrained.Upload(f.filename, f.stream)
                                for f in request.files.getlist("weights_file") if f and f.filename]}  # fmt: skip
    for field in (form.model_def_file, form.labels_file, form.mean_file):
        upload = request.files.get(field.name)
        uploads[field.name] = pretrained.Upload(upload.filename, upload.stream) if upload and upload.filename else None
    return uploads


def _missing_upload(form: FilesForm, uploads: dict) -> tuple | None:
    """``(field, message)`` for the first file the form needs and did not get, or None."""
    if not uploads["weights_file"]:
        return form.weights_file, "Choose the checkpoint's .index and .data-* files."
    for field in (form.model_def_file, form.labels_file):
        if uploads[field.name] is None:
            return field, f"Choose the {field.label.text.lower()} file."
    return None


@blueprint.route("/pretrained_models/upload.json", methods=["POST"])
@blueprint.route("/pretrained_models/upload", methods=["POST"])
@login_required
def upload_files():
    """A pretrained model from its files: ``weights_file`` (several), ``model_def_file``, ``labels_file``, ..."""
    form = FilesForm()
    other = ArchiveForm(formdata=None)
    if not form.validate():
        return ({"errors": form.errors}, 400) if wants_json() else _render_new(other, form, 400)
    uploads = _uploads(form)
    missing = _missing_upload(form, uploads)
    if missing:
        return _refused(form, other, *missing)
    try:
        job = pretrained.from_files(
            current_services().store,
            weights=uploads["weights_file"],
            network=uploads["model_def_file"],
            labels=uploads["labels_file"],
            mean=uploads["mean_file"],
            image_shape=[form.height.data, form.width.data, int(form.image_type.data)],
            resize_mode=form.resize_mode.data,
            subtract_mean=form.subtract_mean.data or None,
            crop_size=form.crop_size.data,
            name=(form.job_name.data or "").strip(),
            username=current_username(),
        )
    except archive.ArchiveError as exc:
        return _refused(form, other, form.weights_file, str(exc))
    return _created(job)


def _scratch_dir() -> Path:
    path = current_services().config.jobs_dir / ".scratch"
    path.mkdir(exist_ok=True)
    return path


# -- the pretrained model's page -----------------------------------------------------------------------------


@blueprint.route("/pretrained_models/<job_id>")
def show(job_id: str):
    job = get_job(job_id, pretrained.TYPE)
    data = pretrained.describe(job)
    if wants_json():
        return data
    return render_template("pretrained/show.html", job=data, can_edit=can_change(job))


@blueprint.route("/pretrained_models/<job_id>.json")
def show_json(job_id: str):
    return pretrained.describe(get_job(job_id, pretrained.TYPE))


@blueprint.route("/pretrained_models/<job_id>/network.py")
def network(job_id: str):
    spec = model_spec(get_job(job_id, pretrained.TYPE), current_services().store)
    return Response(Path(spec.network).read_text(), mimetype="text/plain")


@blueprint.route("/pretrained_models/<job_id>", methods=["DELETE"])
def delete(job_id: str):
    get_job(job_id, pretrained.TYPE)
    return job_views.delete(job_id)
