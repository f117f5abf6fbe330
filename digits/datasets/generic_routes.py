"""Generic dataset pages: a data extension's form inside DIGITS' dataset page, and creating the dataset.

    GET  /datasets/generic/new/<extension_id>            the form (``?clone=<job id>`` fills it again)
    POST /datasets/generic/create/<extension_id>[.json]  create: ``{"id", "name", "status"}`` as JSON
    GET  /datasets/<id>/records?db=train&view=<view id>  a page of records shown by a view extension

The dataset's own page is ``/datasets/<id>``, as for every dataset.
"""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for
from werkzeug.datastructures import MultiDict

from digits.auth import current_username, login_required
from digits.datasets import generic
from digits.extensions.catalog import Extension
from digits.extensions.web import (
    ExtensionError,
    call_extension,
    current_plugins,
    render_config_form,
    render_dataset_form,
    render_view,
)
from digits.form_fields import replayable_data
from digits.jobs import Job, new_job_id
from digits.utils.constants import STAGES
from digits.web.jobs import get_job
from digits.web.responses import wants_json
from digits.web.services import current_services

blueprint = Blueprint("generic_datasets", __name__)


@blueprint.app_errorhandler(ExtensionError)
def extension_failed(error: ExtensionError):
    """An extension raised in the web process: say which and show its traceback; the server goes on."""
    if wants_json():
        return {"errors": str(error), "error": str(error), "traceback": error.traceback}, 500
    return render_template("extensions/error.html", error=error), 500


def extension_or_404(extension_id: str) -> Extension:
    plugins = current_plugins()
    extension = plugins.data.get(extension_id)
    if extension is None:
        reason = plugins.data.broken_reason(extension_id)
        if reason:
            abort(404, description=f"The data extension {extension_id} is broken: {reason}")
        known = ", ".join(sorted(plugins.data.extensions)) or "none"
        abort(404, description=f"No data extension {extension_id!r} is installed; installed: {known}.")
    return extension


def _extension_form(extension: Extension, formdata: MultiDict | None = None):
    form = call_extension(extension, "get_dataset_form()", extension.cls.get_dataset_form)
    if formdata is not None:
        call_extension(extension, "filling its form", form.process, formdata)
    return form


def _render(extension: Extension, form, extension_form, status: int = 200):
    extension_html = render_dataset_form(extension, extension_form)
    page = render_template(
        "datasets/generic/new.html",
        extension=extension,
        extension_html=extension_html,
        extension_form=extension_form,
        form=form,
        action=url_for("generic_datasets.create", extension_id=extension.id),
    )
    return page, status


@blueprint.route("/datasets/generic/new/<extension_id>")
def new(extension_id: str):
    """The empty form, or (``?clone=<id>``) the form another dataset was made with."""
    extension = extension_or_404(extension_id)
    clone_of = request.args.get("clone")
    if clone_of:
        fields = MultiDict()
        for key, value in generic.clone_fields(get_job(clone_of, "dataset")).items():
            for item in value if isinstance(value, list) else [value]:
                fields.add(key, item)
        return _render(extension, generic.GenericDatasetForm(formdata=fields), _extension_form(extension, fields))
    return _render(extension, generic.GenericDatasetForm(), _extension_form(extension))


def new_page(clone_of: str | None):
    """``/datasets/generic/new?clone=<id>`` (where Clone leads, for every dataset kind): the extension's form."""
    if not clone_of:
        abort(404, description="Pick a data extension in the New Dataset menu.")
    job = get_job(clone_of, "dataset")
    extension_id = job.form.get("extension_id") or generic.describe(job)["extension_id"]
    return redirect(url_for("generic_datasets.new", extension_id=extension_id, clone=clone_of))


@blueprint.route("/datasets/generic/create/<extension_id>.json", methods=["POST"])
@blueprint.route("/datasets/generic/create/<extension_id>", methods=["POST"])  # registered first: url_for's URL
@login_required
def create(extension_id: str):
    """Validate both forms, make the job (its files first, then ``job.json``) and queue it."""
    extension = extension_or_404(extension_id)
    form = generic.GenericDatasetForm()
    extension_form = _extension_form(extension)
    valid = form.validate_on_submit()
    valid = call_extension(extension, "validating its form", extension_form.validate_on_submit) and valid
    if valid:
        services = current_services()
        job_id = new_job_id()
        with services.store.staging(job_id) as staging:
            fields = generic.extension_form_data(extension_form, staging)
            job = Job(
                id=job_id,
                type="dataset",
                kind=generic.KIND,
                name=form.dataset_name.data.strip(),
                group=(form.group_name.data or "").strip(),
                username=current_username(),
                directory=str(staging),
                form={**replayable_data(request.form), "extension_id": extension.id},
                tasks=generic.build_tasks(extension, form, fields, staging, generic.worker_count()),
            )
            services.store.add(job, staging)
        services.scheduler.submit(job)
        if wants_json():
            return {"id": job.id, "name": job.name, "status": job.status}
        return redirect(url_for("datasets.show", job_id=job.id))
    if wants_json():
        return {"errors": {**form.errors, **extension_form.errors}}, 400
    return _render(extension, form, extension_form, 400)


@blueprint.route("/datasets/<job_id>/records")
def records(job_id: str):
    """Records of a generic dataset, shown by a view extension (its label standing for the network's output)."""
    job = get_job(job_id, "dataset")
    info = generic.dataset_info(job)
    db = request.args.get("db", "train")
    if db not in STAGES:
        abort(400, description=f"db must be one of {', '.join(STAGES)}.")
    if not info.db_path(db).is_dir():
        abort(404, description=f"The {db} database of {job.name} is not built (yet).")
    plugins = current_plugins()
    view_id = request.args.get("view") or generic.default_view(info)
    view = plugins.view.get(view_id)
    if view is None:
        abort(404, description=f"No view extension {view_id!r}; there are {', '.join(plugins.view.extensions)}.")
    config_form = call_extension(view, "get_config_form()", view.cls.get_config_form)
    if any(name in request.args for name in config_form._fields):
        call_extension(view, "filling its form", config_form.process, request.args)
    config = {k: v for k, v in config_form.data.items() if k != "csrf_token"}
    size = min(max(request.args.get("size", 12, type=int), 1), 100)
    page = max(request.args.get("page", 0, type=int), 0)
    samples, total = generic.read_records(info.db_path(db), page, size)
    rendered = render_view(view, info, config, samples)
    return render_template(
        "datasets/generic/records.html",
        job=job, info=info, db=db, view=view, views=plugins.view.extensions.values(), config_form=config_form,
        config_html=render_config_form(view, config_form), rendered=rendered, keys=[s[0] for s in samples],
        page=page, size=size, total=total, pages=max(1, -(-total // size)),
    )  # fmt: skip
