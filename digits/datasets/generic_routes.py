"""Generic dataset pages: a data extension's form inside DIGITS' dataset page, and creating the dataset.

    GET  /datasets/generic/new/<extension_id>            the form (``?clone=<job id>`` fills it again)
    POST /datasets/generic/create/<extension_id>[.json]  create: ``{"id", "name", "status"}`` as JSON
    GET  /datasets/<id>/records?db=train&view=<view id>  a page of records shown by a view extension

The dataset's own page is ``/datasets/<id>``, as for every dataset.
"""

from __future__ import annotations

from functools import partial

from flask import Blueprint, abort, redirect, render_template, request, url_for

from digits import datasets
from digits.auth import current_username, login_required
from digits.datasets import generic
from digits.datasets.generic import ExtensionDataset
from digits.extensions.catalog import Extension
from digits.extensions.web import (
    call_extension,
    chosen_view,
    current_plugins,
    render_config_form,
    render_dataset_form,
    render_view,
)
from digits.jobs.creation import as_multidict
from digits.utils.constants import STAGES
from digits.web.jobs import create_and_submit, form_data, get_job
from digits.web.services import current_services

blueprint = Blueprint("generic_datasets", __name__)


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


def extension_kind(extension_id: str) -> ExtensionDataset:
    """The dataset kind of an installed data extension; its calls into the plugin are guarded."""
    extension = extension_or_404(extension_id)
    return ExtensionDataset(extension, guard=partial(call_extension, extension))


def _render(kind: ExtensionDataset, forms: list, status: int = 200):
    form, extension_form = forms
    page = render_template(
        kind.template,
        extension=kind.extension,
        extension_html=render_dataset_form(kind.extension, extension_form),
        extension_form=extension_form,
        form=form,
        action=url_for("generic_datasets.create", extension_id=kind.extension.id),
    )
    return page, status


@blueprint.route("/datasets/generic/new/<extension_id>")
def new(extension_id: str):
    """The empty form, or (``?clone=<id>``) the form another dataset was made with."""
    kind = extension_kind(extension_id)
    clone_of = request.args.get("clone")
    return _render(kind, kind.forms(as_multidict(get_job(clone_of, "dataset").form) if clone_of else None))


def new_page():
    """``/datasets/generic/new?clone=<id>`` (where Clone leads for generic datasets): the extension's form."""
    clone_of = request.args.get("clone")
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
    kind = extension_kind(extension_id)
    services, data, owner = current_services(), form_data(), current_username()
    return create_and_submit(
        lambda: datasets.create(services.store, kind, data, owner, roots=services.config.data_roots),
        partial(_render, kind),
        "datasets.show",
    )


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
    view, config_form, config = chosen_view(request.args.get("view") or generic.default_view(info), request.args)
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
