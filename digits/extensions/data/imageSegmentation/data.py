"""Image segmentation datasets: each record is an image (CHW) and its label mask (1xHxW class indices)."""

from __future__ import annotations

import random

import numpy as np
from PIL import Image

from digits.extensions.data.folders import (
    image_error_reason,
    list_images,
    load_pixels,
    pair_by_name,
    size_of,
    split,
)
from digits.extensions.data.imageSegmentation.forms import DatasetForm
from digits.extensions.data.interface import DataIngestionInterface, SkipEntry
from digits.utils import constants, override, subclass
from digits.utils.constants import COLOR_PALETTE_ATTRIBUTE

TEMPLATE = "template.html"
LABEL_MODES = ("P", "L", "1")


def read_colormap(path: str) -> list[int]:
    """A colour map file (one ``R G B`` line per class) as a flat 768-value palette."""
    palette = []
    with open(path) as f:
        for number, line in enumerate(f, start=1):
            values = line.split()
            if not values:
                continue
            if len(values) != 3 or not all(v.isdigit() and int(v) < 256 for v in values):
                raise ValueError(f"{path}, line {number}: expected 'R G B' (0-255), got {line.strip()!r}")
            palette += [int(v) for v in values]
    if not palette:
        raise ValueError(f"{path} has no colours")
    return palette[: 256 * 3] + [0] * (256 * 3 - len(palette[: 256 * 3]))


@subclass
class DataIngestion(DataIngestionInterface):
    """Images and label images paired by file name; the palette and class names are kept with the dataset."""

    def __init__(self, is_inference_db: bool = False, **kwargs):
        super().__init__(is_inference_db, **kwargs)
        self.userdata.setdefault("seed", random.randint(0, 1 << 30))
        self.userdata.setdefault("colormap_method", "label")
        self.size = size_of(self.userdata.get("resize_width"), self.userdata.get("resize_height"))
        self._split = None
        self._palette_image = None
        if COLOR_PALETTE_ATTRIBUTE not in self.userdata:
            if self.userdata["colormap_method"] == "textfile":
                self.userdata[COLOR_PALETTE_ATTRIBUTE] = read_colormap(self.colormap_text_file)
            else:
                self.userdata[COLOR_PALETTE_ATTRIBUTE] = self._palette_of_labels()
        if "class_labels" not in self.userdata:
            names = []
            if self.userdata.get("class_labels_file"):
                with open(self.class_labels_file) as f:
                    names = [line.strip() for line in f if line.strip()]
            elif self.userdata.get("class_names"):
                names = [name.strip() for name in self.class_names.split(",") if name.strip()]
            self.userdata["class_labels"] = names

    def _palette_of_labels(self) -> list[int]:
        # The first label image's palette (all must share it); grayscale labels get a gray ramp.
        first = next(iter(list_images(self.label_folder).values()))
        with Image.open(first) as image:
            if image.mode == "P":
                palette = image.getpalette() or []
                return palette + [0] * (256 * 3 - len(palette))
        return [v for i in range(256) for v in (i, i, i)]

    def load_label(self, path: str) -> np.ndarray:
        """A label image as an HxW uint8 array of class indices."""
        image = Image.open(path)
        image.load()
        if self.userdata["colormap_method"] == "textfile":
            if image.mode != "RGB":
                image = image.convert("RGB")
            if self._palette_image is None:
                self._palette_image = Image.new("P", (1, 1))
                self._palette_image.putpalette(self.userdata[COLOR_PALETTE_ATTRIBUTE])
            image = image.quantize(palette=self._palette_image, dither=Image.Dither.NONE)
        elif image.mode not in LABEL_MODES:
            raise SkipEntry(
                f"label {path} is a {image.mode} image: labels must be paletted or grayscale images, or choose "
                "a colour map file for RGB labels"
            )
        if self.size and image.size != self.size:
            image = image.resize(self.size, Image.Resampling.NEAREST)
        return np.asarray(image.convert("L") if image.mode == "1" else image, dtype=np.uint8)

    @override
    def encode_entry(self, entry):
        image_path, label_path = entry
        if label_path is None:
            raise SkipEntry(f"no label image with the name of {image_path}")
        try:
            feature = load_pixels(image_path, self.userdata.get("channel_conversion", "RGB"), self.size)
        except Exception as exc:  # noqa: BLE001 - an unreadable file is skipped with its reason
            raise SkipEntry(f"image {image_path}: {image_error_reason(exc)}") from exc
        try:
            label = self.load_label(label_path)
        except SkipEntry:
            raise
        except Exception as exc:  # noqa: BLE001
            raise SkipEntry(f"label {label_path}: {image_error_reason(exc)}") from exc
        if label.shape != feature.shape[1:]:
            raise SkipEntry(
                f"label {label_path} is {label.shape[1]}x{label.shape[0]} but its image is "
                f"{feature.shape[2]}x{feature.shape[1]}: give a size to resize both"
            )
        return feature, label[np.newaxis]

    @staticmethod
    @override
    def get_category():
        return "Images"

    @staticmethod
    @override
    def get_id():
        return "image-segmentation"

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
        return "Segmentation"

    @override
    def itemize_entries(self, stage):
        if stage == constants.TEST_DB:
            return []
        if self.userdata.get("has_val_folder"):
            if stage == constants.TRAIN_DB:
                return pair_by_name(self.feature_folder, self.label_folder)
            return pair_by_name(self.validation_feature_folder, self.validation_label_folder)
        if self._split is None:
            pairs = pair_by_name(self.feature_folder, self.label_folder)
            self._split = split(pairs, self.userdata.get("folder_pct_val") or 0, self.userdata["seed"])
        return self._split[0] if stage == constants.TRAIN_DB else self._split[1]
