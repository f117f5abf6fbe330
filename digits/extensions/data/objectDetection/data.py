"""Object detection datasets (KITTI labels): each record is an image (CHW) and its box rows (1 x boxes x 6).

Label files are read once, when the entries of a stage are listed: the dataset's most boxes per image
sets the label's size (every record has the same shape), and what each stage holds (images and boxes per
class) and every problem found (malformed lines, boxes outside the image, images without a label file,
label files without an image, classes not kept) go into the user data the dataset page shows:
``box_counts`` ``{stage: {class: boxes}}``, ``image_counts`` ``{stage: images}``, ``label_problems``
``[{stage, path, line, reason}]`` and ``max_boxes``.
"""

from __future__ import annotations

import os
import random
from collections import Counter

import numpy as np
from PIL import Image

from digits.extensions.data.folders import image_error_reason, list_images, load_pixels, size_of, split
from digits.extensions.data.interface import DataIngestionInterface, SkipEntry
from digits.extensions.data.objectDetection import kitti
from digits.extensions.data.objectDetection.forms import DatasetForm
from digits.utils import constants, override, subclass

TEMPLATE = "template.html"
PROBLEMS_KEPT = 1000  # label problems listed on the page; the count says how many there were


def list_labels(folder: str) -> dict[str, str]:
    """KITTI label files under ``folder`` (recursively), keyed by their path relative to it without ``.txt``."""
    labels = {}
    for base, dirs, names in os.walk(folder, followlinks=True):
        dirs.sort()
        for name in sorted(names):
            if name.endswith(".txt") and not name.startswith("."):
                path = os.path.join(base, name)
                labels[os.path.relpath(path, folder)[: -len(".txt")]] = path
    return labels


@subclass
class DataIngestion(DataIngestionInterface):
    """Images and KITTI label files paired by name; the classes kept, and what was found, in the user data."""

    def __init__(self, is_inference_db: bool = False, **kwargs):
        super().__init__(is_inference_db, **kwargs)
        self.userdata.setdefault("seed", random.randint(0, 1 << 30))
        self.geometry = kitti.Geometry(
            pad=size_of(self.userdata.get("padding_image_width"), self.userdata.get("padding_image_height")),
            size=size_of(self.userdata.get("resize_image_width"), self.userdata.get("resize_image_height")),
        )
        self._pairs: dict[str, list] | None = None
        self._problems: list[dict] = []

    # -- listing: pairs, classes, counts ---------------------------------------------------------------
    def _pair(self, image_folder: str, label_folder: str, stage: str) -> list[tuple[str, str | None]]:
        images, labels = list_images(image_folder), list_labels(label_folder)
        for name in sorted(set(labels) - set(images)):
            self._problem(stage, labels[name], None, "label file without an image (ignored)")
        return [(path, labels.get(name)) for name, path in sorted(images.items())]

    def _stage_pairs(self) -> dict[str, list]:
        if self._pairs is None:
            train = self._pair(self.train_image_folder, self.train_label_folder, constants.TRAIN_DB)
            if self.userdata.get("val_image_folder"):
                val = self._pair(self.val_image_folder, self.val_label_folder, constants.VAL_DB)
            else:
                train, val = split(train, self.userdata.get("folder_pct_val") or 0, self.userdata["seed"])
                train, val = sorted(train), sorted(val)
            self._pairs = {constants.TRAIN_DB: train, constants.VAL_DB: val}
        return self._pairs

    def _problem(self, stage: str, path: str, line: int | None, reason: str) -> None:
        self._problems.append({"stage": stage, "path": path, "line": line, "reason": reason})

    def _classes(self, parsed: list) -> list[str]:
        # The classes kept: the user's list, else every class of the training labels but dontcare.
        if "class_labels" not in self.userdata:
            named = [c.strip() for c in (self.userdata.get("custom_classes") or "").split(",") if c.strip()]
            if not named:
                found = {name.lower() for _, label, _ in parsed if label for name, _ in label.objects}
                named = sorted(found - set(kitti.DONTCARE_NAMES))
            self.userdata["class_labels"] = named
        return self.userdata["class_labels"]

    def _read(self, stage: str, pairs: list) -> list:
        parsed = []
        for image_path, label_path in pairs:
            if label_path is None:
                parsed.append((image_path, None, None))
                continue
            try:
                with Image.open(image_path) as image:
                    size = image.size
            except Exception as exc:  # noqa: BLE001 - an unreadable image is skipped when encoded, with its reason
                parsed.append((image_path, None, image_error_reason(exc)))
                continue
            label = kitti.parse_label_file(label_path, stage, size)
            for problem in label.problems:
                self._problem(problem.stage, problem.path, problem.line, problem.reason)
            parsed.append((image_path, label, size))
        return parsed

    @override
    def itemize_entries(self, stage):
        if self.is_inference_db or stage not in (constants.TRAIN_DB, constants.VAL_DB):
            return []
        parsed = self._read(stage, self._stage_pairs()[stage])
        classes = self._classes(parsed)
        kept = {c.lower() for c in classes}
        min_height = float(self.userdata.get("val_min_box_size") or 0) if stage == constants.VAL_DB else 0.0
        entries, boxes, unknown = [], Counter(), Counter()
        for image_path, label, size in parsed:
            if label is None:
                stem = os.path.splitext(os.path.basename(image_path))[0]
                reason = size if isinstance(size, str) else f"no label file {stem}.txt"
                entries.append((image_path, None, reason))
                continue
            rows = kitti.box_rows(label.objects, classes, self.geometry.scale(size), min_height)
            for name, _ in label.objects:
                if name.lower() not in kept and name.lower() not in kitti.DONTCARE_NAMES:
                    unknown[name] += 1
            for row in rows[rows[:, 4] == kitti.OBJECT]:
                boxes[classes[int(row[5])]] += 1
            entries.append((image_path, size, rows))
        for name, count in sorted(unknown.items()):
            reason = f"class {name!r} is not among the classes kept: {count} box(es) ignored as dontcare"
            self._problem(stage, name, None, reason)
        most = max([len(e[2]) for e in entries if e[1] is not None] or [0])
        self.userdata["max_boxes"] = max(self.userdata.get("max_boxes", 1), most, 1)
        self.userdata.setdefault("box_counts", {})[stage] = {c: boxes.get(c, 0) for c in classes}
        self.userdata.setdefault("image_counts", {})[stage] = sum(1 for e in entries if e[1] is not None)
        self.userdata["label_problems_total"] = len(self._problems)
        self.userdata["label_problems"] = self._problems[:PROBLEMS_KEPT]
        return entries

    # -- encoding ----------------------------------------------------------------------------------------
    @override
    def encode_entry(self, entry):
        image_path, size, rows = entry
        if size is None:
            raise SkipEntry(f"image {image_path}: {rows}")
        try:
            pixels = load_pixels(image_path, self.userdata.get("channel_conversion", "RGB"), None)
        except Exception as exc:  # noqa: BLE001 - an unreadable file is skipped with its reason
            raise SkipEntry(f"image {image_path}: {image_error_reason(exc)}") from exc
        pixels = self.place(pixels, image_path)
        return pixels, kitti.pad_rows(rows, self.userdata["max_boxes"])[np.newaxis]

    def place(self, pixels: np.ndarray, image_path: str) -> np.ndarray:
        """A CHW image padded (top-left) and resized as the dataset stores them."""
        pad, size = self.geometry.pad, self.geometry.size
        if pad:
            height, width = pixels.shape[1:]
            if width > pad[0] or height > pad[1]:
                raise SkipEntry(
                    f"image {image_path} is {width}x{height}, larger than the padding size {pad[0]}x{pad[1]}"
                )
            canvas = np.zeros((pixels.shape[0], pad[1], pad[0]), np.uint8)
            canvas[:, :height, :width] = pixels
            pixels = canvas
        if size and (pixels.shape[2], pixels.shape[1]) != size:
            image = Image.fromarray(pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0))
            array = np.asarray(image.resize(size, Image.Resampling.BILINEAR), np.uint8)
            pixels = array[np.newaxis] if array.ndim == 2 else array.transpose(2, 0, 1)
        return pixels

    # -- what DIGITS asks of an extension -------------------------------------------------------------------
    @staticmethod
    @override
    def get_category():
        return "Images"

    @staticmethod
    @override
    def get_id():
        return "image-object-detection"

    @staticmethod
    @override
    def get_dataset_form():
        return DatasetForm()

    @staticmethod
    @override
    def get_dataset_template(form):
        return TEMPLATE, {"form": form}

    @staticmethod
    @override
    def get_title():
        return "Object Detection"
