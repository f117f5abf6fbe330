"""Generic datasets: made by a data extension (a plugin's ``DataIngestion``) from the extension's own form.

A generic dataset job (kind ``generic``) has one task, ``create_generic_db``, that runs
``python -m digits.tools.create_generic_db`` in the job directory. The directory holds:

    extension_form.json       the extension form's fields, as the extension receives them
    extension_userdata.json   what the extension's get_user_data() returned (palette, class names, seed...)
    train_db/ val_db/ test_db/   LMDB databases of digits.records examples, one per stage with entries
    mean.npy (mean.png)       the mean training feature, HWC float32 (the PNG for 8-bit images)

The task's data (``job.tasks[0].data``) says how records carry features and labels: ``feature_dims``
[H, W, C], ``feature_dtype``, ``feature_encoding`` (png/jpg/raw), ``label_kind`` (``class``: the int64
``label`` feature; ``values``: the float ``label/values`` vector of ``label_dims`` [N]; ``array``:
``label/encoded`` of ``label_dims`` [H, W, C] and ``label_dtype``; ``none``), and ``entries`` per stage.
:func:`dataset_info` gives all of it, and what view extensions get as ``dataset``.
"""

from __future__ import annotations

import datetime
import decimal
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.utils import secure_filename
from wtforms import Form, IntegerField, StringField
from wtforms.validators import DataRequired, NumberRange, ValidationError

from digits.data_roots import inside_data_roots
from digits.datasets.kinds import DatasetKind
from digits.extensions.catalog import Extension
from digits.form_fields import Choice
from digits.jobs import Job, Task, lists
from digits.utils.constants import STAGES

KIND = "generic"
TITLE = "Generic Dataset"
PREBUILT_KIND = "generic-images"
PREBUILT_TITLE = "Other Image Dataset (prebuilt LMDBs)"
TASK_ID = "create_generic_db"
DETECTION_EXTENSION = "image-object-detection"
FORM_FILE = "extension_form.json"
USERDATA_FILE = "extension_userdata.json"
UPLOADS = "uploads"


class GenericDatasetForm(Form):
    """DIGITS' own fields of a generic dataset (its name, how records are stored); the rest is the extension's."""

    dataset_name = StringField("Dataset Name", validators=[DataRequired("Name the dataset.")])
    group_name = StringField("Group Name", description="Jobs of a group are listed together on the home page.")
    dsopts_feature_encoding = Choice(
        "Feature Encoding",
        choices=[("png", "PNG (lossless)"), ("jpg", "JPEG (lossy, 90%)"), ("none", "None")],
        default="png",
        description="How 8-bit images of 1 or 3 channels are stored; other arrays are always stored raw.",
    )
    dsopts_label_encoding = Choice(
        "Label Encoding",
        choices=[("none", "None"), ("png", "PNG (lossless)")],
        default="none",
        description="How 8-bit label images (masks, targets) are stored.",
    )
    dsopts_batch_size = IntegerField(
        "Encoder batch size",
        default=32,
        validators=[DataRequired(), NumberRange(1, 4096)],
        description="Entries handed to a worker process at a time.",
    )
    dsopts_num_threads = IntegerField(
        "Number of encoder processes",
        default=4,
        validators=[DataRequired(), NumberRange(1, 256)],
        description="Worker processes calling the extension's encode_entry (at most the CPU count).",
    )
    dsopts_backend = Choice("DB backend", choices=[("lmdb", "LMDB")], default="lmdb")
    dsopts_force_same_shape = Choice(
        "Enforce same shape",
        choices=[("1", "Yes"), ("0", "No")],
        default="1",
        description="Check that every sample has the same shape (needed to train; also gives the mean image).",
    )


def _check_db(form, field) -> None:
    """A prebuilt database field: empty, or an LMDB of DIGITS records."""
    from digits.tools.create_generic_db import inspect_db

    path = (field.data or "").strip()
    if path:
        try:
            field.db = inspect_db(path)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class PrebuiltDatasetForm(Form):
    """A dataset from LMDBs built elsewhere (DIGITS' "Other" image dataset; its field names).

    ``roots`` are the data roots (set by ``kind.forms(data, roots=...)``): the databases and the mean file
    must lie in them; a form without roots accepts no server path.
    """

    roots: Sequence[Path] = ()

    dataset_name = StringField("Dataset Name", validators=[DataRequired("Name the dataset.")])
    group_name = StringField("Group Name", description="Jobs of a group are listed together on the home page.")
    prebuilt_train_images = StringField(
        "Training Images",
        validators=[DataRequired("Enter the training database's folder."), inside_data_roots, _check_db],
        description="An LMDB folder of digits.records examples (keys 00000000, 00000001, ...).",
    )
    prebuilt_train_labels = StringField(
        "Training Labels",
        validators=[inside_data_roots, _check_db],
        description="Optional: an LMDB whose records' images are the labels.",
    )
    prebuilt_val_images = StringField("Validation Images", validators=[inside_data_roots, _check_db])
    prebuilt_val_labels = StringField("Validation Labels", validators=[inside_data_roots, _check_db])
    prebuilt_mean_file = StringField(
        "Mean Image",
        validators=[inside_data_roots],
        description="Optional: a .npy or image file; computed from the training images otherwise.",
    )

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        mean = (self.prebuilt_mean_file.data or "").strip()
        if mean and not self.prebuilt_mean_file.errors and not os.path.isfile(mean):
            self.prebuilt_mean_file.errors = [*self.prebuilt_mean_file.errors, f"{mean} is not a file on the server."]
            ok = False
        for stage in ("train", "val"):
            images, labels = self[f"prebuilt_{stage}_images"], self[f"prebuilt_{stage}_labels"]
            if (labels.data or "").strip() and not (images.data or "").strip():
                labels.errors = [*labels.errors, f"Give the {stage} images too."]
                ok = False
            elif hasattr(images, "db") and hasattr(labels, "db") and images.db[0] != labels.db[0]:
                labels.errors = [*labels.errors, f"{labels.db[0]} labels for {images.db[0]} images."]
                ok = False
        train, val = self.prebuilt_train_images, self.prebuilt_val_images
        if hasattr(train, "db") and hasattr(val, "db") and train.db[1][:3] != val.db[1][:3]:
            val.errors = [*val.errors, "Its images differ from the training images in shape, type or encoding."]
            ok = False
        return ok


def build_prebuilt_tasks(form: PrebuiltDatasetForm) -> list[Task]:
    """The task of a dataset from prebuilt databases: copy them into the job, compute the mean."""
    args = ["--out", "."]
    for stage in ("train", "val"):
        for part, option in (("images", "--prebuilt"), ("labels", "--prebuilt-labels")):
            path = (form[f"prebuilt_{stage}_{part}"].data or "").strip()
            if path:
                args += [option, f"{stage}={path}"]
    if (form.prebuilt_mean_file.data or "").strip():
        args += ["--mean-file", form.prebuilt_mean_file.data.strip()]
    return [Task(id=TASK_ID, name="Import databases", tool="digits.tools.create_generic_db", args=args)]


def _json_value(value: Any, name: str, staging: Path) -> Any:
    if isinstance(value, FileStorage):
        if not value.filename:
            return None
        folder = staging / UPLOADS
        folder.mkdir(exist_ok=True)
        path = folder / f"{name}-{secure_filename(value.filename) or 'upload'}"
        value.save(path)
        return str(path)
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _json_value(v, f"{name}-{k}", staging) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v, f"{name}-{i}", staging) for i, v in enumerate(value)]
    return value


def extension_form_data(form: Form, staging: Path) -> dict[str, Any]:
    """The extension form's ``data`` as JSON: uploaded files are saved in the job and passed as paths."""
    return {
        name: _json_value(value, name, staging)
        for name, value in form.data.items()
        if name not in ("csrf_token", "submit")
    }


def build_tasks(extension: Extension, form: GenericDatasetForm, fields: dict[str, Any], staging: Path,
                workers: int) -> list[Task]:  # fmt: skip
    """The task of a new generic dataset; the extension's fields are written into ``staging`` first."""
    (staging / FORM_FILE).write_text(json.dumps(fields, indent=1, sort_keys=True))
    processes = max(1, min(form.dsopts_num_threads.data or 1, workers))
    args = [
        "--extension", extension.id, "--form", FORM_FILE, "--out", ".",
        "--feature-encoding", form.dsopts_feature_encoding.data,
        "--label-encoding", form.dsopts_label_encoding.data,
        "--batch-size", str(form.dsopts_batch_size.data),
        "--workers", str(processes),
        "--force-same-shape" if form.dsopts_force_same_shape.data == "1" else "--no-force-same-shape",
    ]  # fmt: skip
    data = {"extension_id": extension.id, "extension_title": extension.title, "extension_origin": extension.origin}
    return [Task(id=TASK_ID, name=f"Create DB ({extension.title})", tool="digits.tools.create_generic_db",
                 args=args, data=data)]  # fmt: skip


def read_userdata(directory: Path) -> dict[str, Any]:
    try:
        return json.loads((directory / USERDATA_FILE).read_text())
    except (OSError, ValueError):
        return {}


def _task_data(job: Job) -> dict[str, Any]:
    task = next((t for t in job.tasks if t.id == TASK_ID), None)
    return task.data if task else {}


def describe(job: Job, skipped_page: int = 1) -> dict[str, Any]:
    """What the dataset page and ``/datasets/<id>.json`` show of a generic dataset (the keys the image
    dataset page reads, and the generic ones: extension, feature and label shapes). Skipped entries: the
    count (``skipped_total``) and one page of them (``skipped_page``)."""
    directory = Path(job.directory)
    data = _task_data(job)
    userdata = read_userdata(directory)
    skipped_total, page = lists.page_across(directory, [(TASK_ID, data)], "skipped_images", skipped_page)
    skipped = [{k: v for k, v in s.items() if k != "event"} for _, s in page]
    skipped_counts = {stage: {"all": n} for stage, n in (data.get("skipped") or {}).items() if n}
    return {
        "extension_id": data.get("extension_id") or job.form.get("extension_id"),
        "extension_title": data.get("extension_title"),
        "extension_userdata": userdata,
        "labels": list(userdata.get("class_labels") or []),
        "image_dimensions": data.get("feature_dims"),
        "feature_dims": data.get("feature_dims"),
        "feature_dtype": data.get("feature_dtype"),
        "encoding": data.get("feature_encoding"),
        "resize_mode": None,
        "label_kind": data.get("label_kind"),
        "label_dims": data.get("label_dims"),
        "label_dtype": data.get("label_dtype"),
        "entries": data.get("entries", {}),
        # Extensions may count what each stage holds (detection: boxes per class) and list label problems.
        "distribution": userdata.get("box_counts") or {},
        "label_problems": userdata.get("label_problems") or [],
        "label_problems_total": userdata.get("label_problems_total", 0),
        "skipped": skipped,
        "skipped_total": skipped_total,
        "skipped_page": skipped_page,
        "skipped_page_size": lists.PAGE_SIZE,
        "skipped_counts": skipped_counts,
        "dropped_classes": [],
        "has_mean": (directory / "mean.png").is_file(),
        # Explore shows image classification databases only.
        "stages": [],
        "db_paths": {stage: str(directory / f"{stage}_db") for stage in STAGES if (directory / f"{stage}_db").is_dir()},
    }


@dataclass
class DatasetInfo:
    """A dataset as the model side and view extensions see it (``dataset`` in a view's ``__init__``).

    ``get_feature_dims()`` and ``extension_userdata`` are what DIGITS' view plugins use.
    """

    id: str
    name: str
    kind: str
    directory: Path
    feature_dims: list[int] | None  # [H, W, C]
    feature_dtype: str = "uint8"
    label_kind: str = "class"  # class, values, array or none
    label_dims: list[int] = field(default_factory=list)
    label_dtype: str | None = None
    labels: list[str] = field(default_factory=list)  # class names
    extension_id: str | None = None
    extension_userdata: dict[str, Any] = field(default_factory=dict)
    entries: dict[str, int] = field(default_factory=dict)

    def get_feature_dims(self) -> list[int] | None:
        """[H, W, C] of the dataset's images."""
        return self.feature_dims

    def get_label_dims(self) -> list[int]:
        return self.label_dims

    def db_path(self, stage: str) -> Path:
        return self.directory / f"{stage}_db"

    def mean_file(self) -> Path | None:
        path = self.directory / "mean.npy"
        return path if path.is_file() else None


def dataset_info(job: Job) -> DatasetInfo:
    """What a dataset job holds, whatever its kind (image classification datasets included)."""
    from digits.datasets import kind_of

    return kind_of(job).info(job)


def generic_info(job: Job) -> DatasetInfo:
    """A generic dataset's :class:`DatasetInfo`, from its task's results and user data."""
    details = describe(job)
    return DatasetInfo(
        id=job.id, name=job.name, kind=job.kind, directory=Path(job.directory),
        feature_dims=details["feature_dims"], feature_dtype=details["feature_dtype"] or "uint8",
        label_kind=details["label_kind"] or "none", label_dims=details["label_dims"] or [],
        label_dtype=details["label_dtype"], labels=details["labels"], extension_id=details["extension_id"],
        extension_userdata=details["extension_userdata"], entries=details["entries"],
    )  # fmt: skip


def default_view(info: DatasetInfo) -> str:
    """The view extension that shows a dataset's records best: overlays for masks, images for image labels."""
    from digits.utils.constants import COLOR_PALETTE_ATTRIBUTE

    if info.extension_id == DETECTION_EXTENSION:
        return "image-bounding-boxes"
    if info.label_kind == "array":
        return "image-segmentation" if info.extension_userdata.get(COLOR_PALETTE_ATTRIBUTE) else "image-image-output"
    return "all-raw-data"


def read_records(db_path: Path, page: int, size: int) -> tuple[list[tuple], int]:
    """A page of a database's records as view samples ``(key, input HxW[xC], {"label": array}, None)``, and
    the record count: the label plays the network's output, so any view shows a dataset's ground truth."""
    import lmdb
    import numpy as np

    from digits.records import decode_record, record_image, record_key, record_label

    env = lmdb.open(str(db_path), readonly=True, lock=False, readahead=False, subdir=True)
    samples = []
    try:
        total = env.stat()["entries"]
        with env.begin() as txn:
            for index in range(page * size, min(total, (page + 1) * size)):
                record = decode_record(txn.get(record_key(index)))
                image = record_image(record)
                label = record_label(record)
                if isinstance(label, np.ndarray) and label.ndim == 3:
                    label = label.transpose(2, 0, 1)  # views get CHW arrays
                elif label is not None:
                    label = np.atleast_1d(np.asarray(label))
                outputs = {"label": label} if label is not None else {}
                samples.append((record_key(index).decode(), image[:, :, 0] if image.shape[2] == 1 else image, outputs,
                                None))  # fmt: skip
    finally:
        env.close()
    return samples, total


class PrebuiltDataset(DatasetKind):
    """DIGITS' "Other" image datasets: LMDBs of our records built elsewhere, copied into the job."""

    id = PREBUILT_KIND
    path = "images/generic"
    title = PREBUILT_TITLE
    form = PrebuiltDatasetForm
    template = "datasets/generic/prebuilt.html"

    def build_tasks(self, forms: list[Form], staging: Path) -> list[Task]:
        return build_prebuilt_tasks(forms[0])

    def describe(self, job: Job, skipped_page: int = 1) -> dict[str, Any]:
        return describe(job, skipped_page)

    def info(self, job: Job) -> DatasetInfo:
        return generic_info(job)


def _plain_call(doing: str, function, *args, **kwargs):
    return function(*args, **kwargs)


class ExtensionDataset(DatasetKind):
    """A dataset a data extension makes from its own form (DIGITS' generic datasets).

    ``extension`` is the data extension whose form and ``DataIngestion`` make the dataset (None for a kind
    that only describes existing datasets). Every call into the extension goes through ``guard(doing,
    function, *args)``, so the web layer can turn a plugin's exception into a page that names the plugin.
    """

    id = KIND
    path = "generic"
    title = TITLE
    form = GenericDatasetForm
    template = "datasets/generic/new.html"

    def __init__(self, extension: Extension | None = None, guard=_plain_call):
        self.extension = extension
        self.guard = guard

    def forms(self, data: MultiDict | None = None, *, roots: Sequence[Path] = (), **context: Any) -> list[Form]:
        """DIGITS' generic dataset form and the extension's own, both filled with ``data``. The extension's
        form carries the data ``roots``: the built-in extensions' folder and file fields keep to them."""
        extension_form = self.guard("get_dataset_form()", self.extension.cls.get_dataset_form)
        extension_form.roots = list(roots)
        if data is not None:
            self.guard("filling its form", extension_form.process, data)
        return [GenericDatasetForm(formdata=data), extension_form]

    def validate(self, form: Form) -> bool:
        if isinstance(form, GenericDatasetForm):
            return form.validate()
        return self.guard("validating its form", form.validate)

    def build_tasks(self, forms: list[Form], staging: Path) -> list[Task]:
        form, extension_form = forms
        return build_tasks(self.extension, form, extension_form_data(extension_form, staging), staging, self.workers())

    def form_record(self, data: MultiDict) -> dict[str, Any]:
        return {**super().form_record(data), "extension_id": self.extension.id}

    def describe(self, job: Job, skipped_page: int = 1) -> dict[str, Any]:
        return describe(job, skipped_page)

    def info(self, job: Job) -> DatasetInfo:
        return generic_info(job)
