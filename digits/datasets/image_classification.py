"""Image classification datasets: the form (DIGITS' field names), the tasks that build one, its description.

A dataset job has a ``parse_folder`` task when made from a folder, then one ``create_db_<stage>`` task per
stage. Its directory holds ``labels.txt``, the list files ``<stage>.txt``, the LMDB folders
``<stage>_db`` and ``mean.npy``/``mean.png``.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wtforms import Form, IntegerField, StringField
from wtforms.validators import DataRequired, NumberRange, Optional, ValidationError

from digits.data_roots import outside_data_roots
from digits.datasets.kinds import DatasetKind
from digits.form_fields import Checkbox, Choice, RadioChoice, Upload, add_error
from digits.jobs import Job, Task, lists
from digits.jobs.creation import FormProblem
from digits.tools.parse_folder import ScanBudget, find_classes, iter_images
from digits.utils.constants import STAGES, TEST_DB, TRAIN_DB, VAL_DB

log = logging.getLogger(__name__)

KIND = "image-classification"
TITLE = "Image Classification Dataset"
MAX_SIZE = 8192
# The folder check of the form runs in a request thread: at most this many folder entries and seconds.
CHECK_ENTRIES = 20_000
CHECK_SECONDS = 2.0


def _readable_folder(path: str) -> str | None:
    """Why ``path`` cannot be read as a folder, or None."""
    if not path:
        return "Enter a folder on the server."
    if not os.path.exists(path):
        return f"{path} does not exist on the server."
    if not os.path.isdir(path):
        return f"{path} is a file, not a folder."
    if not os.access(path, os.R_OK | os.X_OK):
        return f"The server cannot read {path}: check its permissions."
    return None


def check_class_folder(
    path: str, min_per_class: int, need_classes: int, *, max_entries: int = CHECK_ENTRIES,
    max_seconds: float = CHECK_SECONDS,
) -> str | None:  # fmt: skip
    """Raise ValidationError unless ``path`` has ``need_classes`` class sub-folders holding enough images.

    The check runs in the request, so it looks at no more than ``max_entries`` folder entries and
    ``max_seconds``, and stops as soon as enough classes have enough images. When the budget runs out first,
    the folder is accepted and the parse task counts the rest; the note saying so is returned (else None).
    Links out of the folder are not followed (as the parse task does not).
    """
    problem = _readable_folder(path)
    if problem:
        raise ValidationError(problem)
    budget = ScanBudget(max_entries, max_seconds)
    classes = find_classes(path, budget)
    if not classes and not budget.exhausted:
        raise ValidationError(f"{path} has no sub-folders: put the images of each class in a folder of its own.")
    counts: dict[str, int] = {}
    for name in classes:
        counts[name] = 0
        for _ in iter_images(os.path.join(path, name), top=path, budget=budget):
            counts[name] += 1
            if counts[name] >= min_per_class:
                break
        if sum(count >= min_per_class for count in counts.values()) >= need_classes:
            return None
    if budget.exhausted:
        return f"checked the first {max_entries} entries of {path} (or {max_seconds:g} s); the parse task counts all"
    if not any(counts.values()):
        raise ValidationError(f"No images found in the class folders of {path}.")
    enough = [name for name, count in counts.items() if count >= min_per_class]
    few = ", ".join(f"{n} ({c})" for n, c in counts.items() if c < min_per_class)
    detail = f"; too few images in {few}" if few else ""
    raise ValidationError(
        f"{path} needs at least {need_classes} classes with {min_per_class} or more images each, "
        f"found {len(enough)}{detail}."
    )


def _local_file(path: str) -> str | None:
    if not path:
        return "Enter a file on the server."
    if not os.path.isfile(path):
        return f"{path} is not a file on the server."
    if not os.access(path, os.R_OK):
        return f"The server cannot read {path}: check its permissions."
    return None


class ImageClassificationDatasetForm(Form):
    """DIGITS' image classification dataset form; field names are DIGITS' so scripts keep working.

    ``roots`` are the data roots (set by ``kind.forms(data, roots=...)``): the folders and files the form
    names must lie in them; a form without roots accepts no server path.
    """

    roots: Sequence[Path] = ()

    dataset_name = StringField("Dataset Name", validators=[DataRequired("Name the dataset.")])
    group_name = StringField("Group Name", description="Jobs of a group are listed together on the home page.")

    resize_channels = Choice("Image Type", choices=[("3", "Color"), ("1", "Grayscale")], default="3", coerce=str)
    resize_width = IntegerField("Resize Width", default=256, validators=[DataRequired(), NumberRange(1, MAX_SIZE)])
    resize_height = IntegerField("Resize Height", default=256, validators=[DataRequired(), NumberRange(1, MAX_SIZE)])
    resize_mode = Choice(
        "Resize Transformation",
        choices=[("squash", "Squash"), ("crop", "Crop"), ("fill", "Fill"), ("half_crop", "Half crop, half fill")],
        default="squash",
        description="How images of another aspect ratio are made to fit the size.",
    )
    encoding = Choice(
        "Image Encoding",
        choices=[("png", "PNG (lossless)"), ("jpg", "JPEG (lossy, 90%)"), ("none", "None")],
        default="png",
    )
    backend = Choice("DB backend", choices=[("lmdb", "LMDB")], default="lmdb")
    compression = Choice("DB compression", choices=[("none", "None")], default="none")

    method = RadioChoice(
        "Method", choices=[("folder", "Use Image Folder"), ("textfile", "Use Text Files")], default="folder"
    )

    folder_train = StringField("Training Images", description="A folder with one sub-folder of images per class.")
    folder_pct_val = IntegerField("% for validation", default=25, validators=[Optional(), NumberRange(0, 100)])
    folder_pct_test = IntegerField("% for testing", default=0, validators=[Optional(), NumberRange(0, 100)])
    folder_train_min_per_class = IntegerField(
        "Minimum samples per class", default=2, validators=[Optional(), NumberRange(1)]
    )
    folder_train_max_per_class = IntegerField("Maximum samples per class", validators=[Optional(), NumberRange(1)])
    has_val_folder = Checkbox("Separate validation images folder")
    folder_val = StringField("Validation Images")
    folder_val_min_per_class = IntegerField(
        "Minimum samples per class", default=2, validators=[Optional(), NumberRange(1)]
    )
    folder_val_max_per_class = IntegerField("Maximum samples per class", validators=[Optional(), NumberRange(1)])
    has_test_folder = Checkbox("Separate test images folder")
    folder_test = StringField("Test Images")
    folder_test_min_per_class = IntegerField(
        "Minimum samples per class", default=2, validators=[Optional(), NumberRange(1)]
    )
    folder_test_max_per_class = IntegerField("Maximum samples per class", validators=[Optional(), NumberRange(1)])

    textfile_use_local_files = Checkbox("Use local files on server")
    textfile_train_images = Upload("Training images", description="Lines of '<path> <label index>'.")
    textfile_local_train_images = StringField("Training images")
    textfile_train_folder = StringField("Image folder (optional)", description="Prefix for relative paths.")
    textfile_use_val = Checkbox("Use validation set")
    textfile_val_images = Upload("Validation images")
    textfile_local_val_images = StringField("Validation images")
    textfile_val_folder = StringField("Image folder (optional)")
    textfile_use_test = Checkbox("Use test set")
    textfile_test_images = Upload("Test images")
    textfile_local_test_images = StringField("Test images")
    textfile_test_folder = StringField("Image folder (optional)")
    textfile_shuffle = Checkbox("Shuffle lines", default=True)
    textfile_labels_file = Upload("Labels", description="One class name per line; line N names label N.")
    textfile_local_labels_file = StringField("Labels")

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        if self.method.data == "folder":
            ok = self._validate_folders() and ok
        elif self.method.data == "textfile":
            ok = self._validate_textfiles() and ok
        return ok

    def _fail(self, field, message: str) -> bool:
        add_error(field, message)
        return False

    def _validate_folders(self) -> bool:
        ok = True
        pct_val, pct_test = self.folder_pct_val.data or 0, self.folder_pct_test.data or 0
        if pct_val + pct_test >= 100:
            ok = self._fail(self.folder_pct_val, "Validation and test percentages must add up to less than 100.")
        for used, folder, minimum, classes in (
            (True, self.folder_train, self.folder_train_min_per_class, 2),
            (self.has_val_folder.data, self.folder_val, self.folder_val_min_per_class, 1),
            (self.has_test_folder.data, self.folder_test, self.folder_test_min_per_class, 1),
        ):
            if not used:
                continue
            path = (folder.data or "").strip()
            # Refused before it is looked at: what a folder outside the roots holds is not told.
            problem = self._outside_roots(path)
            if problem:
                ok = self._fail(folder, problem)
                continue
            try:
                note = check_class_folder(path, minimum.data or 1, classes)
                if note:
                    log.info("dataset form: %s", note)
            except ValidationError as exc:
                ok = self._fail(folder, str(exc))
        return ok

    def _outside_roots(self, path: str) -> str | None:
        """Why the server path ``path`` is refused by the data roots; None when allowed or empty."""
        return outside_data_roots(path, self.roots) if path else None

    def _validate_textfiles(self) -> bool:
        ok = True
        for stage, used in (
            (TRAIN_DB, True),
            (VAL_DB, self.textfile_use_val.data),
            (TEST_DB, self.textfile_use_test.data),
        ):
            if not used:
                continue
            if self.textfile_use_local_files.data:
                field = self[f"textfile_local_{stage}_images"]
                path = (field.data or "").strip()
                problem = self._outside_roots(path) or _local_file(path)
            else:
                field = self[f"textfile_{stage}_images"]
                problem = None if field.data else f"Upload the {stage} list file."
            if problem:
                ok = self._fail(field, problem)
            folder = (self[f"textfile_{stage}_folder"].data or "").strip()
            if folder:
                problem = self._outside_roots(folder) or _readable_folder(folder)
                if problem:
                    ok = self._fail(self[f"textfile_{stage}_folder"], problem)
        if self.textfile_use_local_files.data:
            path = (self.textfile_local_labels_file.data or "").strip()
            problem = self._outside_roots(path) or _local_file(path)
            if problem:
                ok = self._fail(self.textfile_local_labels_file, problem)
        elif not self.textfile_labels_file.data:
            ok = self._fail(self.textfile_labels_file, "Upload the labels file.")
        return ok


# -- building the job ------------------------------------------------------------------------------------
def stages_of(form: ImageClassificationDatasetForm) -> list[str]:
    if form.method.data == "folder":
        used = {
            VAL_DB: bool(form.folder_pct_val.data) or form.has_val_folder.data,
            TEST_DB: bool(form.folder_pct_test.data) or form.has_test_folder.data,
        }
    else:
        used = {VAL_DB: form.textfile_use_val.data, TEST_DB: form.textfile_use_test.data}
    return [stage for stage in STAGES if stage == TRAIN_DB or used[stage]]


def _copy_in(form: ImageClassificationDatasetForm, upload_field: str, local_field: str, target: Path) -> None:
    """Put a list or labels file into the job directory, uploaded or from the server's disk."""
    if form.textfile_use_local_files.data:
        shutil.copyfile(form[local_field].data.strip(), target)
    else:
        form[upload_field].data.save(target)


def _check_labels_file(path: Path) -> str | None:
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines()]
    names = [line for line in lines if line]
    if len(names) < 2:
        return f"The labels file names {len(names)} class(es); a classification dataset needs at least 2."
    return None


def build_tasks(form: ImageClassificationDatasetForm, staging: Path, workers: int) -> list[Task]:
    """The tasks of a new dataset; list files and labels are put into ``staging`` first."""
    tasks: list[Task] = []
    create_deps: list[str] = []
    stages = stages_of(form)
    if form.method.data == "folder":
        # A separate folder replaces the share held out for its stage, as in DIGITS.
        pct_val = 0 if form.has_val_folder.data else form.folder_pct_val.data or 0
        pct_test = 0 if form.has_test_folder.data else form.folder_pct_test.data or 0
        args = [form.folder_train.data.strip(), "--out-dir", "."]
        args += ["--pct-val", str(pct_val), "--pct-test", str(pct_test)]
        args += ["--min-per-class", str(form.folder_train_min_per_class.data or 1)]
        if form.folder_train_max_per_class.data:
            args += ["--max-per-class", str(form.folder_train_max_per_class.data)]
        for stage, has in ((VAL_DB, form.has_val_folder), (TEST_DB, form.has_test_folder)):
            if has.data:
                args += [
                    f"--{stage}-folder",
                    form[f"folder_{stage}"].data.strip(),
                    f"--{stage}-min-per-class",
                    str(form[f"folder_{stage}_min_per_class"].data or 1),
                ]
                if form[f"folder_{stage}_max_per_class"].data:
                    args += [f"--{stage}-max-per-class", str(form[f"folder_{stage}_max_per_class"].data)]
        tasks.append(Task(id="parse_folder", name="Parse folder", tool="digits.tools.parse_folder", args=args))
        create_deps = ["parse_folder"]
        folders = {stage: None for stage in stages}
        shuffle = True
    else:
        _copy_in(form, "textfile_labels_file", "textfile_local_labels_file", staging / "labels.txt")
        problem = _check_labels_file(staging / "labels.txt")
        if problem:
            raise FormProblem(form.textfile_labels_file, problem)
        for stage in stages:
            _copy_in(form, f"textfile_{stage}_images", f"textfile_local_{stage}_images", staging / f"{stage}.txt")
        folders = {stage: (form[f"textfile_{stage}_folder"].data or "").strip() or None for stage in stages}
        shuffle = form.textfile_shuffle.data

    for stage in stages:
        args = [
            "--list",
            f"{stage}.txt",
            "--db",
            f"{stage}_db",
            "--labels",
            "labels.txt",
            "--width",
            str(form.resize_width.data),
            "--height",
            str(form.resize_height.data),
            "--channels",
            form.resize_channels.data,
            "--resize-mode",
            form.resize_mode.data,
            "--encoding",
            form.encoding.data,
            "--workers",
            str(workers),
            "--shuffle" if shuffle else "--no-shuffle",
        ]
        if folders[stage]:
            args += ["--folder", folders[stage]]
        if stage == TRAIN_DB:
            args += ["--mean", "mean.npy"]
        tasks.append(
            Task(
                id=f"create_db_{stage}",
                name=f"Create DB ({stage})",
                tool="digits.tools.create_db",
                args=args,
                depends_on=list(create_deps),
            )
        )
    return tasks


# -- describing the dataset ------------------------------------------------------------------------------
def read_labels(directory: Path) -> list[str]:
    try:
        return [line.strip() for line in (directory / "labels.txt").read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        return []


def describe(job: Job, skipped_page: int = 1) -> dict[str, Any]:
    """What the dataset page and ``/datasets/<id>.json`` show, computed from the tasks' results and files.

    Of the skipped images, ``skipped_total`` counts them all and ``skipped`` is one page of them
    (``skipped_page``, :data:`~digits.jobs.lists.PAGE_SIZE` a page): a list of a million stays out of the page.
    """
    directory = Path(job.directory)
    parse = next((t for t in job.tasks if t.id == "parse_folder"), None)
    planned = (parse.data.get("stages") if parse else None) or {}
    entries, distribution, skipped_counts, listed = {}, {}, {}, []
    for task in job.tasks:
        if not task.id.startswith("create_db_"):
            continue
        stage = task.id.removeprefix("create_db_")
        if "entries" in task.data:
            entries[stage] = task.data["entries"]
        distribution[stage] = task.data.get("distribution") or planned.get(stage, {}).get("distribution", {})
        listed.append((task.id, task.data))
        skipped_counts[stage] = task.data.get("skipped", {})
    skipped_total, page = lists.page_across(directory, listed, "skipped_images", skipped_page)
    skipped = [{"stage": task_id.removeprefix("create_db_"), **item} for task_id, item in page]
    form = job.form
    return {
        "labels": read_labels(directory),
        "image_dimensions": [
            int(form.get("resize_height", 256)),
            int(form.get("resize_width", 256)),
            int(form.get("resize_channels", 3)),
        ],
        "encoding": form.get("encoding", "png"),
        "resize_mode": form.get("resize_mode", "squash"),
        "entries": entries,
        "distribution": distribution,
        "skipped": skipped,
        "skipped_total": skipped_total,
        "skipped_page": skipped_page,
        "skipped_page_size": lists.PAGE_SIZE,
        "skipped_counts": skipped_counts,
        "dropped_classes": parse.data.get("dropped_classes", []) if parse else [],
        "has_mean": (directory / "mean.png").is_file(),
        "stages": [stage for stage in STAGES if (directory / f"{stage}_db").is_dir()],
    }


class ImageClassificationDataset(DatasetKind):
    """Images in class folders or listed with their labels, resized into LMDB databases per stage."""

    id = KIND
    path = "images/classification"
    title = TITLE
    form = ImageClassificationDatasetForm

    def build_tasks(self, forms: list[Form], staging: Path) -> list[Task]:
        return build_tasks(forms[0], staging, self.workers())

    def describe(self, job: Job, skipped_page: int = 1) -> dict[str, Any]:
        return describe(job, skipped_page)

    def info(self, job: Job):
        from digits.datasets.generic import DatasetInfo

        details = describe(job)
        return DatasetInfo(
            id=job.id, name=job.name, kind=job.kind, directory=Path(job.directory),
            feature_dims=details["image_dimensions"], labels=details["labels"], entries=details["entries"],
        )  # fmt: skip
