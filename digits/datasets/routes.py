"""Dataset pages and their JSON twins: new, create, show, explore, resize preview, mean image."""

from __future__ import annotations

import io
import os
from pathlib import Path

from flask import Blueprint, abort, current_app, redirect, render_template, request, send_file, url_for

from digits.auth import current_username, login_required
from digits.datasets import generic, generic_routes
from digits.datasets import image_classification as classification
from digits.datasets.explore import explore_page
from digits.form_fields import add_error, replay, replayable_data
from digits.imaging import RESIZE_MODES, load_image, resize_image
from digits.jobs import Job, new_job_id
from digits.utils.constants import STAGES
from digits.web.jobs import get_job, kind_or_404
from digits.web.responses import wants_json
from digits.web.services import current_services

blueprint = Blueprint("datasets", __name__)

# The dataset kinds this server makes: URL path under /datasets/, title, form.
KINDS = {
    classification.KIND: {
        "id": classification.KIND,
        "path": "images/classification",
        "title": classification.TITLE,
        "form": classification.ImageClassificationDatasetForm,
        "describe": classification.describe,
        "build_tasks": classification.build_tasks,
    },
    # DIGITS' "Other" image datasets: LMDBs built elsewhere, copied in.
    generic.PREBUILT_KIND: {
        "id": generic.PREBUILT_KIND,
        "path": "images/generic",
        "title": generic.PREBUILT_TITLE,
        "form": generic.PrebuiltDatasetForm,
        "template": "datasets/generic/prebuilt.html",
        "describe": generic.describe,
        "build_tasks": generic.build_prebuilt_tasks,
    },
    # Datasets made by data extensions: each extension has its own page (generic_routes).
    generic.KIND: {
        "id": generic.KIND,
        "path": "generic",
        "title": generic.TITLE,
        "new_page": generic_routes.new_page,
        "describe": generic.describe,
    },
}

EXAMPLE_IMAGE = "images/resize-example.jpg"


def _render_form(kind: dict, form, status: int = 200):
    action = url_for("datasets.create", kind=kind["id"])
    return render_template(kind.get("template", "datasets/new.html"), form=form, kind=kind, action=action), status


def new(kind: str):
    """The empty creation form, or (``?clone=<id>``) the form another job was made with."""
    kind = kind_or_404(KINDS, kind, "dataset")
    clone_of = request.args.get("clone")
    if "new_page" in kind:
        return kind["new_page"](clone_of)
    form = replay(kind["form"], get_job(clone_of, "dataset").form) if clone_of else kind["form"]()
    return _render_form(kind, form)


@login_required
def create(kind: str):
    """Validate the form, make the job (its files first, then ``job.json``) and queue it."""
    kind = kind_or_404(KINDS, kind, "dataset")
    form = kind["form"]()
    if form.validate_on_submit():
        services = current_services()
        job_id = new_job_id()
        try:
            with services.store.staging(job_id) as staging:
                job = Job(
                    id=job_id,
                    type="dataset",
                    kind=kind["id"],
                    name=form.dataset_name.data.strip(),
                    group=(form.group_name.data or "").strip(),
                    username=current_username(),
                    directory=str(staging),
                    form=replayable_data(request.form),
                    tasks=kind["build_tasks"](form, staging, workers=os.cpu_count() or 1),
                )
                services.store.add(job, staging)
        except classification.FormProblem as problem:
            add_error(problem.field, problem.message)
        else:
            services.scheduler.submit(job)
            if wants_json():
                return {"id": job.id, "name": job.name, "status": job.status}
            return redirect(url_for("datasets.show", job_id=job.id))
    if wants_json():
        return {"errors": form.errors}, 400
    return _render_form(kind, form, 400)


for _kind in KINDS.values():
    blueprint.add_url_rule(f"/datasets/{_kind['path']}/new", "new", new, defaults={"kind": _kind["id"]})
    for _suffix in ("", ".json") if "form" in _kind else ():
        blueprint.add_url_rule(
            f"/datasets/{_kind['path']}{_suffix}", "create", create, methods=["POST"], defaults={"kind": _kind["id"]}
        )


def dataset_json(job: Job) -> dict:
    """The dataset as its page and its JSON twin show it."""
    services = current_services()
    with services.store.lock:
        data = services.store.snapshot(job)
        details = KINDS.get(job.kind, KINDS[classification.KIND])["describe"](job)
        dependents = [{"id": d.id, "name": d.name, "type": d.type} for d in services.store.dependents(job)]
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
        for bulky in ("skipped_images", "stages"):
            task["data"].pop(bulky, None)
        task.pop("args", None)
    return data


@blueprint.route("/datasets/<job_id>")
def show(job_id: str):
    job = get_job(job_id, "dataset")
    data = dataset_json(job)
    if wants_json():
        return data
    return render_template("datasets/show.html", job=data, can_edit=current_username() == job.username)


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
