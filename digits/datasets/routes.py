"""Dataset pages and their JSON twins: new, create, show, explore, resize preview, mean image."""

from __future__ import annotations

import io
import os
from functools import partial
from pathlib import Path

from flask import Blueprint, abort, current_app, render_template, request, send_file, url_for

from digits import datasets
from digits.auth import can_change, current_username, login_required
from digits.datasets import generic_routes
from digits.datasets import image_classification as classification
from digits.datasets.explore import explore_page
from digits.imaging import RESIZE_MODES, load_image, resize_image
from digits.jobs import Job
from digits.jobs.creation import as_multidict
from digits.jobs.lists import page_number
from digits.utils.constants import STAGES
from digits.web.jobs import create_and_submit, form_data, get_job, kind_or_404
from digits.web.responses import wants_json
from digits.web.services import current_services

blueprint = Blueprint("datasets", __name__)

EXAMPLE_IMAGE = "images/resize-example.jpg"


def _render_form(kind: datasets.DatasetKind, forms: list, status: int = 200):
    action = url_for("datasets.create", kind=kind.id)
    return render_template(kind.template, form=forms[0], kind=kind, action=action), status


def new(kind: str):
    """The empty creation form, or (``?clone=<id>``) the form another job was made with."""
    kind = kind_or_404(datasets.KINDS, kind, "dataset")
    clone_of = request.args.get("clone")
    return _render_form(kind, kind.forms(as_multidict(get_job(clone_of, "dataset").form) if clone_of else None))


@login_required
def create(kind: str):
    """Validate the form, make the job (its files first, then ``job.json``) and queue it."""
    kind = kind_or_404(datasets.KINDS, kind, "dataset")
    services, data, owner = current_services(), form_data(), current_username()
    return create_and_submit(
        lambda: datasets.create(services.store, kind, data, owner, roots=services.config.data_roots),
        partial(_render_form, kind),
        "datasets.show",
    )


for _kind in datasets.KINDS.values():
    blueprint.add_url_rule(f"/datasets/{_kind.path}/new", "new", new, defaults={"kind": _kind.id})
    for _suffix in ("", ".json"):
        blueprint.add_url_rule(
            f"/datasets/{_kind.path}{_suffix}", "create", create, methods=["POST"], defaults={"kind": _kind.id}
        )
# Where Clone leads for datasets made by data extensions: the extension's own form.
blueprint.add_url_rule("/datasets/generic/new", "new_generic", generic_routes.new_page)


def dataset_json(job: Job) -> dict:
    """The dataset as its page and its JSON twin show it."""
    services = current_services()
    with services.store.lock:
        data = services.store.snapshot(job)
        dependents = [{"id": d.id, "name": d.name, "type": d.type} for d in services.store.dependents(job)]
    # Described from a copy, the lock released: the skipped entries are read from their files.
    details = datasets.kind_of(job).describe(Job.from_dict(data), page_number(request.args.get("skipped_page", 1)))
    data.pop("form", None)
    data.update(details)
    data.update(
        status=job.status,
        progress=job.progress,
        error=job.error,
        dependents=dependents,
        mean_image_url=url_for("datasets.mean_image", job_id=job.id) if details["has_mean"] else None,
        explore_urls={stage: url_for("datasets.explore", job_id=job.id, db=stage) for stage in details["stages"]},
    )
    for task in data["tasks"]:
        for bulky in ("skipped_images", "metrics", "stages"):
            task["data"].pop(bulky, None)
        task.pop("args", None)
    return data


@blueprint.route("/datasets/<job_id>")
def show(job_id: str):
    job = get_job(job_id, "dataset")
    data = dataset_json(job)
    if wants_json():
        return data
    return render_template("datasets/show.html", job=data, can_edit=can_change(job))


@blueprint.route("/datasets/<job_id>.json")
def show_json(job_id: str):
    return dataset_json(get_job(job_id, "dataset"))


@blueprint.route("/datasets/<job_id>/mean.png")
def mean_image(job_id: str):
    job = get_job(job_id, "dataset")
    path = Path(job.directory) / "mean.png"
    if not path.is_file():
        abort(404, description="This dataset has no mean image yet.")
    return send_file(path, mimetype="image/png", max_age=0)


@blueprint.route("/datasets/<job_id>/explore.json")
@blueprint.route("/datasets/<job_id>/explore")  # registered first: url_for builds the page's URL
def explore(job_id: str):
    """A page of thumbnails of one database, optionally of one class."""
    job = get_job(job_id, "dataset")
    db = request.args.get("db", "train")
    if db not in STAGES:
        abort(400, description=f"db must be one of {', '.join(STAGES)}.")
    db_path = Path(job.directory) / f"{db}_db"
    if not (db_path / "labels.npy").is_file():
        abort(404, description=f"The {db} database of {job.name} is not built (yet).")
    labels = classification.read_labels(Path(job.directory))
    size = min(max(request.args.get("size", 24, type=int), 1), 200)
    label = request.args.get("label", None, type=int)
    page = max(request.args.get("page", 0, type=int), 0)
    result = explore_page(db_path, labels, page, size, label)
    context = {
        "db": db,
        "labels": labels,
        "label": label,
        "page": page,
        "size": size,
        "pages": result.pages,
        "total": result.total,
        "items": result.items,
    }
    if wants_json():
        return context
    return render_template("datasets/explore.html", job=dataset_json(job), **context)


@blueprint.route("/datasets/images/resize-example")
def resize_example():
    """What a resize mode does to an example image: the form's live preview."""
    width = min(max(request.args.get("width", 256, type=int), 1), 1024)
    height = min(max(request.args.get("height", 256, type=int), 1), 1024)
    mode = request.args.get("mode", "squash")
    if mode not in RESIZE_MODES:
        abort(400, description=f"mode must be one of {', '.join(RESIZE_MODES)}.")
    channels = 1 if request.args.get("channels") == "1" else 3
    image = resize_image(
        load_image(os.path.join(current_app.static_folder, EXAMPLE_IMAGE), channels), height, width, mode
    )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    buffer.seek(0)
    return send_file(buffer, mimetype="image/png", max_age=0)
