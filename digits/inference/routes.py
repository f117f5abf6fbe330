"""Using a trained model: Classify One, Classify Many (a list, or the dataset's val/test database), Top N.

Every route has its ``.json`` twin with DIGITS' field names (``job_id``, ``snapshot_epoch``, ``image_file``,
``image_path``, ``image_url``, ``show_visualizations``, ``image_list``, ``image_folder``, ``num_test_images``,
``top_n``), read from the query string or the form alike, as DIGITS did (``classify_one.json?job_id=...``).
An image may be named by an http(s) URL (``image_url``, an ``image_path`` or a list line that is a URL): the
view fetches it (:mod:`digits.inference.fetch`, bounded by ``fetch_max_mb`` and ``fetch_timeout``; off with
``DIGITS_FETCH_URLS=0``) into a scratch file the worker reads, removed after the answer.
The work happens in the warm inference worker (a child process); the view only checks the form and shapes
the answer. Lists longer than ``inference_sync_limit`` run as a background job (see ``digits.inference.jobs``).
"""

from __future__ import annotations

import os
import tempfile
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np
from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from markupsafe import Markup, escape
from werkzeug.datastructures import CombinedMultiDict
from wtforms import IntegerField, StringField
from wtforms.validators import NumberRange, Optional

from digits.auth import current_username
from digits.data_roots import inside_data_roots
from digits.datasets.generic import DETECTION_EXTENSION, dataset_info
from digits.detection import bbox_answer, kitti_zip, score_list, split_label_files
from digits.extensions.data import create_extension
from digits.extensions.web import (
    ExtensionError,
    call_extension,
    chosen_view,
    current_plugins,
    render_config_form,
    render_extension_template,
    render_view,
)
from digits.form_fields import Checkbox, Choice, add_error
from digits.imaging import ImageError, open_image
from digits.inference import jobs as inference_jobs
from digits.inference.fetch import FetchError, fetch_image, is_url
from digits.inference.results import parse_image_list, shape_results
from digits.inference.spec import SpecError, model_spec
from digits.inference.worker import InferenceError
from digits.jobs import Job, Status
from digits.web.jobs import get_job
from digits.web.responses import wants_json
from digits.web.services import current_services

blueprint = Blueprint("inference", __name__)
BASE = "/models/images/classification"
TOP = 5
# A list may name at most this many URLs, each fetched while the request waits.
MAX_LIST_URLS = 100


def path_or_url(form, field) -> None:
    """WTForms validator: a URL (fetched later, not a server path) or a server path inside the data roots."""
    if not is_url(field.data or ""):
        inside_data_roots(form, field)


class InferenceForm(FlaskForm):
    """The fields of every inference request, from the form or the query string; each route reads the ones
    it needs.

    Server paths (an image, a list, a folder) must lie in the server's data roots (``roots``); URLs are not
    server paths and are fetched instead.
    """

    job_id = StringField("Model")
    snapshot_epoch = StringField("Snapshot (epoch)", description="Empty for the last snapshot.")
    image_file = FileField("Upload image")
    image_path = StringField("Image path on the server", validators=[path_or_url])
    image_url = StringField("Image URL", description="An http or https address the server fetches the image from.")
    show_visualizations = Checkbox("Show visualizations and statistics")
    image_list = FileField("Upload image list", description="Lines of 'path [label]'.")
    image_list_path = StringField("Image list on the server", validators=[inside_data_roots])
    image_folder = StringField(
        "Image folder", validators=[inside_data_roots], description="Prefix of the relative paths in the list."
    )
    db = Choice("Dataset database", choices=[("", "none"), ("val", "validation"), ("test", "test")], default="")
    num_test_images = IntegerField("Number of images (0: all)", validators=[Optional(), NumberRange(0)])
    top_n = IntegerField("Images per class", default=9, validators=[Optional(), NumberRange(1, 100)])

    def __init__(self, *args, **kwargs):
        if not args and "formdata" not in kwargs and not request.is_json:
            # DIGITS' clients put job_id (and other values) in the query string as often as in the form.
            kwargs["formdata"] = CombinedMultiDict([request.files, request.form, request.args])
        super().__init__(*args, **kwargs)
        self.roots = current_services().config.data_roots


def _bad_request(form: InferenceForm):
    if wants_json():
        return {"errors": form.errors}, 400
    return render_template("error.html", code=400, title="Bad request", message=_first_error(form), details=None), 400


def _first_error(form: InferenceForm) -> str:
    for name, messages in form.errors.items():
        label = getattr(form, name).label.text if hasattr(form, name) else name
        return f"{label}: {messages[0]}"
    return "Invalid request."


def _model_and_spec(form: InferenceForm):
    """The model job and its spec at the chosen snapshot; a form error (returned as None) when unusable."""
    if not form.validate():
        return None, None
    job_id = (form.job_id.data or "").strip()
    if not job_id:
        add_error(form.job_id, "Give the id of a trained model (job_id).")
        return None, None
    job = get_job(job_id)
    if job.type not in ("model", "pretrained"):
        abort(404, description=f"Job {job_id} is a {job.type}, not a model.")
    try:
        return job, model_spec(job, current_services().store, form.snapshot_epoch.data)
    except SpecError as exc:
        add_error(form.snapshot_epoch, str(exc))
        return job, None


@contextmanager
def _uploaded(storage):
    """The upload saved to a temporary file (the worker reads files), removed afterwards; ImageError when it is
    not an image or is over the pixel limit (read from its header, so the worker never decodes it)."""
    suffix = Path(storage.filename or "").suffix[:10]
    handle, path = tempfile.mkstemp(prefix="upload-", suffix=suffix, dir=_scratch_dir())
    try:
        with os.fdopen(handle, "wb") as f:
            storage.save(f)
        open_image(path).close()
        yield path
    finally:
        os.unlink(path)


def _scratch_dir() -> Path:
    path = current_services().config.jobs_dir / ".scratch"
    path.mkdir(exist_ok=True)
    return path


@contextmanager
def _fetched(url: str):
    """The image at ``url`` saved to a scratch file, removed afterwards; raises FetchError (and when
    fetching is off, says how it is turned on)."""
    config = current_services().config
    if not config.fetch_urls:
        raise FetchError("this server does not fetch images from URLs (DIGITS_FETCH_URLS=0)")
    body, suffix = fetch_image(url, max_bytes=config.fetch_max_mb << 20, timeout=config.fetch_timeout)
    handle, path = tempfile.mkstemp(prefix="fetched-", suffix=suffix, dir=_scratch_dir())
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(body)
        yield path
    finally:
        os.unlink(path)


def _run(spec, paths: list[str], **options) -> dict:
    try:
        return current_services().inference.request(spec, paths, **options)
    except InferenceError as exc:
        where = f" (network.py, line {exc.user_line})" if exc.user_line and "line" not in str(exc) else ""
        abort(400 if exc.fixable else 500, description=f"Inference failed: {exc}{where}")


def _one_image(form: InferenceForm, **options):
    """Run the model on the request's one image: uploaded (``image_file``), fetched (``image_url``, or an
    ``image_path`` that is a URL) or on the server (``image_path``).

    Returns ``(job, spec, reply)`` with the result named after the image, or ``(None, None, response)``:
    the 400 that says what to fix (no image, a URL not fetched and why, not an image, a model that cannot
    be used).
    """
    job, spec = _model_and_spec(form)
    upload = request.files.get("image_file")
    uploaded = bool(upload and upload.filename)
    url = (form.image_url.data or "").strip()
    path = (form.image_path.data or "").strip()
    field = form.image_file if uploaded else form.image_url if url else form.image_path
    if not uploaded and not url and is_url(path):
        url = path
    if spec is not None and not uploaded and not url and not path:
        add_error(form.image_file, "Upload an image (image_file), give its path on the server (image_path) "
                                   "or its URL (image_url).")  # fmt: skip
    if spec is None or form.errors:
        return None, None, _bad_request(form)
    name = upload.filename if uploaded else url or path
    try:
        with ExitStack() as stack:
            if uploaded:
                source = stack.enter_context(_uploaded(upload))
            elif url:
                source = stack.enter_context(_fetched(url))
            else:
                source = path
            reply = _run(spec, [source], **options)
    except FetchError as exc:
        add_error(field, f"{url}: {exc}")
        return None, None, _bad_request(form)
    except ImageError as exc:
        add_error(field, f"{name}: {exc.reason}")
        return None, None, _bad_request(form)
    result = reply["results"][0]
    result["name"] = name
    if "error" in result:
        add_error(field, f"{name}: {result['error']}")
        return None, None, _bad_request(form)
    return job, spec, reply


def classify_one():
    """Top 5 classes of one image (uploaded or on the server), with layer visualizations when asked."""
    form = InferenceForm()
    visualize = bool(form.show_visualizations.data)
    job, spec, reply = _one_image(form, top=TOP, layers=visualize, image=True)
    if job is None:
        return reply
    result = reply["results"][0]
    answer = {
        "predictions": result.get("predictions"),
        "outputs": result.get("outputs"),
        "image": result.get("image"),
        "parameters": reply["parameters"],
        "snapshot_epoch": spec.snapshot_epoch,
    }
    if visualize:
        answer["layers"] = reply.get("layers", [])
    if wants_json():
        return {k: v for k, v in answer.items() if v is not None}
    return render_template("models/classify_one.html", job=job, name=result["name"], **answer)


def _image_list(form: InferenceForm, spec) -> tuple[list[str], list, list]:
    """The paths, labels and per-line problems of the request's list; form errors when there is none."""
    upload = request.files.get("image_list")
    if upload and upload.filename:
        text = upload.read().decode("utf-8", errors="replace")
    elif (form.image_list_path.data or "").strip():
        try:
            text = Path(form.image_list_path.data.strip()).read_text(errors="replace")
        except OSError as exc:
            add_error(form.image_list_path, f"cannot read {form.image_list_path.data}: {exc.strerror}")
            return [], [], []
    else:
        add_error(form.image_list, "Upload a list of 'path [label]' lines (image_list) or choose a database (db).")
        return [], [], []
    limit = form.num_test_images.data or None
    folder = (form.image_folder.data or "").strip()
    parsed = parse_image_list(text, spec.labels, folder, limit, roots=form.roots)
    if not parsed.paths:
        add_error(form.image_list, "The list has no image paths.")
    return parsed.paths, parsed.labels, parsed.problems


def classify_many():
    """Top 5 of each image of a list (or of the dataset's val/test database), with accuracy when labelled."""
    return _many("classify_many")


def top_n_route():
    """For each class, the N images of a list the model is most sure belong to it."""
    return _many("top_n")


def _many(mode: str):
    """Classify Many, Top N or Infer Many: a list in the request, or (``db``) the dataset's own database.

    Lists up to ``inference_sync_limit`` are answered at once; longer ones and databases become a job.
    """
    form = InferenceForm()
    job, spec = _model_and_spec(form)
    if spec is None:
        return _bad_request(form)
    generic = mode == "infer_many"
    if form.db.data:
        return _start_job(job, spec, form, "infer_db" if generic else mode, db=form.db.data,
                          limit=form.num_test_images.data or None)  # fmt: skip
    paths, labels, problems = _image_list(form, spec)
    label_of: dict[str, str | None] = {}
    if spec.task == "detection":
        # A detection list's line is "image [labels.txt]": KITTI ground truth scores the boxes.
        paths, label_files, refused = split_label_files(paths, (form.image_folder.data or "").strip(), form.roots)
        problems += refused
        label_of = dict(zip(paths, label_files, strict=True))
    urls = sum(is_url(p) for p in paths)
    sync_limit = current_services().config.inference_sync_limit
    if urls and len(paths) > sync_limit:
        add_error(form.image_list, f"A list naming URLs is answered at once: at most {sync_limit} images.")
    elif urls > MAX_LIST_URLS:
        add_error(form.image_list, f"The list names {urls} URLs; at most {MAX_LIST_URLS} are fetched per request.")
    if form.errors:
        return _bad_request(form)
    if len(paths) > sync_limit:
        return _start_job(job, spec, form, mode, paths=paths, labels=labels, problems=problems)
    viewed = generic and not wants_json()  # a view extension draws on each input as well as its output
    with ExitStack() as stack:
        paths, labels, names = _fetch_listed(stack, paths, labels, problems)
        # Top N ranks every image by each class's score, so it needs every class's, not the top 5.
        reply = _run(spec, paths, top=len(spec.labels) if mode == "top_n" else TOP, inputs=viewed)
    for result in reply["results"]:
        result["name"] = names.get(result["name"], result["name"])
    scores = None
    if spec.task == "detection":
        scores = score_list(reply["results"], [label_of.get(r["name"]) for r in reply["results"]], spec.labels)
    if viewed:
        return render_outputs(job, spec, reply["results"], "Infer Many", scores=scores)
    answer = shape_results(mode, reply["results"], labels, spec.labels, problems, form.top_n.data or 9)
    if spec.task == "detection":
        answer["outputs"] = {r["name"]: bbox_answer(r["detections"], spec.labels) for r in reply["results"]
                             if "detections" in r}  # fmt: skip
        answer.update({"scores": scores} if scores else {})
    if wants_json():
        return answer
    return render_template(f"models/{mode}.html", job=job, spec=spec, **answer)


def _fetch_listed(stack: ExitStack, paths: list[str], labels: list, problems: list):
    """Fetch the list's URLs into scratch files that live as long as ``stack``. Returns the paths and labels
    to run (a URL that failed joins ``problems`` with why) and, for each scratch file, the URL it came from."""
    kept, kept_labels, names = [], [], {}
    for path, label in zip(paths, labels, strict=True):
        if is_url(path):
            try:
                saved = stack.enter_context(_fetched(path))
            except FetchError as exc:
                problems.append({"path": path, "error": str(exc)})
                continue
            names[saved] = path
            path = saved
        kept.append(path)
        kept_labels.append(label)
    return kept, kept_labels, names


def _start_job(job: Job, spec, form: InferenceForm, mode: str, **source):
    """Run the request as a background job (long lists, whole databases); answer with where to follow it."""
    services = current_services()
    try:
        created = inference_jobs.create(
            services.store, job, spec, mode, current_username(), top_n=form.top_n.data or 9, **source
        )
    except SpecError as exc:
        add_error(form.db, str(exc))
        if wants_json():
            return _bad_request(form)
        message = str(exc)[0].upper() + str(exc)[1:]
        return render_template("error.html", code=400, title="Cannot test the dataset", message=message,
                               details=None), 400  # fmt: skip
    services.scheduler.submit(created)
    url = url_for("inference.show_job", job_id=created.id)
    if wants_json():
        return {"id": created.id, "status": created.status, "url": url}, 202
    return redirect(url)


@blueprint.route("/inference/<job_id>.json")
def show_job_json(job_id: str):
    """A background inference job: its progress, then the same results as the synchronous answer."""
    return inference_jobs.describe(get_job(job_id, "inference"))


@blueprint.route("/inference/<job_id>")
def show_job(job_id: str):
    job = get_job(job_id, "inference")
    if wants_json():
        return inference_jobs.describe(job)
    model = current_services().store.get(job.form.get("model", ""))
    mode = job.form.get("mode", "")
    if mode.startswith("infer_") and job.status == Status.DONE:
        # A generic model's outputs are drawn by a view, from the stored results (not their JSON shape).
        spec, stored = inference_jobs.stored_results(job)
        return render_outputs(model, spec, stored["results"], inference_jobs.TITLES[mode])
    return render_template("models/inference_job.html", job=job, data=inference_jobs.describe(job), model=model)


for _name, _view in (("classify_one", classify_one), ("classify_many", classify_many), ("top_n", top_n_route)):
    for _suffix in ("", ".json"):
        blueprint.add_url_rule(f"{BASE}/{_name}{_suffix}", _name, _view, methods=["POST"])


# -- generic models (DIGITS' Images > Other): outputs instead of classes, shown by a view extension -----------
GENERIC_BASE = "/models/images/generic"
DEFAULT_VIEW = "all-raw-data"
DETECTION_VIEW = "image-bounding-boxes"


def render_outputs(job: Job, spec, results: list[dict], title: str, scores: dict | None = None):
    """The HTML page of generic outputs: each sample through the chosen view extension. A detection model's
    boxes (drawn by the bounding-box view unless another is chosen) come with ``scores`` for a labelled list
    and their KITTI files to download."""
    detection = spec.task == "detection"
    view_id = request.values.get("view_extension_id") or (DETECTION_VIEW if detection else DEFAULT_VIEW)
    extension, _, config = chosen_view(view_id, request.form, missing_status=400)
    dataset = current_services().store.get(spec.extra.get("dataset_id", ""))
    key = "bbox-list" if detection else "output"
    samples = [
        (r["name"], np.asarray(r.get("input", []), np.float32), {key: chw(np.asarray(r["outputs"]))}, None)
        for r in results
        if "outputs" in r
    ]
    try:
        view = render_view(extension, dataset_info(dataset) if dataset else None, config, samples)
    except ExtensionError as exc:
        return render_template(
            "error.html", code=500, title="View failed", message=str(exc), details=exc.traceback
        ), 500
    errors = [{"path": r["name"], "error": r["error"]} for r in results if "error" in r]
    kitti = kitti_zip(results, spec.labels) if detection else None
    return render_template(
        "models/infer_results.html", job=job, spec=spec, title=title, view=view, extension=extension,
        names=[s[0] for s in samples], errors=errors, scores=scores, kitti=kitti,
    )  # fmt: skip


def chw(array: np.ndarray) -> np.ndarray:
    """View extensions get 3-D outputs CHW, as DIGITS gave them; the network's are HWC."""
    return array.transpose(2, 0, 1) if array.ndim == 3 else array


def infer_one():
    """The network's output for one image (uploaded or on the server): ``{"outputs": {"output": [...]}}``."""
    form = InferenceForm()
    job, spec, reply = _one_image(form, top=TOP, inputs=not wants_json())
    if job is None:
        return reply
    result = reply["results"][0]
    if wants_json() and spec.task == "detection":
        # A list per image, as DIGITS' DetectNet answered (one image here).
        return {"outputs": {key: [value] for key, value in bbox_answer(result["detections"], spec.labels).items()}}
    if wants_json():
        return {"outputs": {"output": [result.get("outputs", result.get("predictions"))]}}
    return render_outputs(job, spec, reply["results"], "Infer One")


def infer_many():
    """The outputs of a list of images: ``{"outputs": {path: {"output": [...]}}, "errors": [...]}``."""
    return _many("infer_many")


def infer_db():
    """The outputs of the dataset's validation or test database (``db``): a background job."""
    form = InferenceForm()
    job, spec = _model_and_spec(form)
    if spec is None:
        return _bad_request(form)
    if not form.db.data:
        add_error(form.db, "Choose the database to run: val or test.")
        return _bad_request(form)
    return _start_job(job, spec, form, "infer_db", db=form.db.data, limit=form.num_test_images.data or None)


for _name, _view in (("infer_one", infer_one), ("infer_many", infer_many), ("infer_db", infer_db)):
    for _suffix in ("", ".json"):
        blueprint.add_url_rule(f"{GENERIC_BASE}/{_name}{_suffix}", _name, _view, methods=["POST"])


@blueprint.app_context_processor
def _test_stages():
    """``test_stages(job_id)`` for "Test the dataset": ``[(stage, name)]`` of the model dataset's databases."""

    def test_stages(job_id: str) -> list[tuple[str, str]]:
        store = current_services().store
        model = store.get(job_id)
        dataset = store.get(model.form.get("dataset", "")) if model else None
        have = inference_jobs.dataset_stages(dataset)
        return [(stage, inference_jobs.STAGE_NAMES[stage]) for stage in ("val", "test") if stage in have]

    return {"test_stages": test_stages}


@blueprint.app_context_processor
def _inference_views():
    """``inference_views()`` for the model page: each usable view extension with its config form's HTML."""

    def inference_views(job_id: str | None = None) -> list[dict]:
        # First (the one chosen) the view that suits the model: boxes for a detection model, raw data otherwise.
        store = current_services().store
        model = store.get(job_id or "")
        dataset = store.get(model.form.get("dataset", "")) if model else None
        detects = dataset is not None and dataset.form.get("extension_id") == DETECTION_EXTENSION
        first = DETECTION_VIEW if detects else DEFAULT_VIEW
        views = []
        for extension in sorted(current_plugins().view.extensions.values(), key=lambda e: e.id != first):
            try:
                form = extension.cls.get_config_form()
                html = render_config_form(extension, form) if form is not None else ""
            except ExtensionError as exc:
                html = Markup(f'<div class="text-danger small">{escape(str(exc))}</div>')
            views.append({"id": extension.id, "title": extension.title, "config": html})
        return views

    return {"inference_views": inference_views}


def _inference_extension(job: Job):
    """The data extension of a generic model's dataset, created for inference as DIGITS did (from the
    dataset's user data), and its inference form; ``(None, None, reason)`` when it offers none."""
    dataset = current_services().store.get(job.form.get("dataset", ""))
    if dataset is None or dataset.kind != "generic":
        return None, None, "the model's dataset was not made by a data extension"
    info = dataset_info(dataset)
    extension = current_plugins().data.get(info.extension_id or "")
    if extension is None:
        reason = current_plugins().data.broken_reason(info.extension_id or "")
        return (
            None,
            None,
            f"the data extension {info.extension_id} is {'broken: ' + reason if reason else 'not installed'}",
        )
    userdata = info.extension_userdata
    instance = call_extension(extension, "__init__", lambda: create_extension(extension.cls, userdata, True))
    form = call_extension(extension, "get_inference_form()", instance.get_inference_form)
    if form is None:
        return extension, None, f"the data extension {extension.title} offers no inference form"
    return extension, form, None


def infer_extension():
    """Run the model on what its dataset's data extension makes of its inference form (a background job:
    the extension builds an inference database, then the model runs over it)."""
    form = InferenceForm()
    job, spec = _model_and_spec(form)
    if spec is None:
        return _bad_request(form)
    extension, extension_form, reason = _inference_extension(job)
    if extension_form is None:
        abort(400, description=f"Inference from a data extension is not available: {reason}.")
    extension_form.roots = current_services().config.data_roots  # the built-in extensions' paths keep to them
    if not extension_form.validate():
        if wants_json():
            return {"errors": extension_form.errors}, 400
        return render_template("error.html", code=400, title="Bad request", message=str(extension_form.errors),
                               details=None), 400  # fmt: skip
    return _start_job(job, spec, form, "infer_extension", extension=(extension.id, extension_form))


for _suffix in ("", ".json"):
    blueprint.add_url_rule(f"{GENERIC_BASE}/infer_extension{_suffix}", "infer_extension", infer_extension,
                           methods=["POST"])  # fmt: skip


@blueprint.app_context_processor
def _inference_extension_form():
    """``inference_extension_form(job)`` for the model page: the data extension's inference form as HTML."""

    def inference_extension_form(job_id: str) -> dict | None:
        job = current_services().store.get(job_id)
        if job is None or job.kind != "image-generic":
            return None
        try:
            extension, form, _ = _inference_extension(job)
            if form is None:
                return None
            template, context = call_extension(
                extension, "get_inference_template()", extension.cls.get_inference_template, form
            )
            html = render_extension_template(extension, template, context)
        except ExtensionError as exc:
            return {
                "title": "Data extension",
                "html": Markup(f'<div class="text-danger small">{escape(str(exc))}</div>'),
            }
        return {"title": extension.title, "html": html}

    return {"inference_extension_form": inference_extension_form}
