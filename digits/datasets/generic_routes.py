"""Generic dataset pages: a data extension's form inside DIGITS' dataset page, and creating the dataset.

    GET  /datasets/generic/new/<extension_id>            the form (``?clone=<job id>`` fills it again)
    POST /datasets/generic/create/<extension_id>[.json]  create: ``{"id", "name", "status"}`` as JSON

The dataset's own page is ``/datasets/<id>``, as for every dataset.
"""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for
from werkzeug.datastructures import MultiDict

from digits.app import current_services
from digits.auth import current_username, login_required
from digits.datasets import generic
from digits.extensions.catalog import Extension
from digits.extensions.web import ExtensionError, call_extension, current_plugins, render_extension_template
from digits.forms import replayable_data
from digits.jobs import Job, new_job_id
from digits.web.jobs import get_job
from digits.web.responses import wants_json

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
    template, context = call_extension(
        extension, "get_dataset_template()", extension.cls.get_dataset_template, extension_form
    )
    extension_html = call_extension(
        extension, "rendering its dataset template", render_extension_template, extension, template, context
    )
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


@blueprint.route("/datasets/generic/create/<extension_id>", methods=["POST"])
@blueprint.route("/datasets/generic/create/<extension_id>.json", methods=["POST"])
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
