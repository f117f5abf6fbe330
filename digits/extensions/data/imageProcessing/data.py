"""Image processing datasets: each record is an input image and its target image (both CHW uint8)."""

from __future__ import annotations

import random

from digits.extensions.data.folders import image_error_reason, load_pixels, pair_by_name, size_of, split
from digits.extensions.data.imageProcessing.forms import DatasetForm
from digits.extensions.data.interface import DataIngestionInterface, SkipEntry
from digits.utils import constants, override, subclass

TEMPLATE = "template.html"


@subclass
class DataIngestion(DataIngestionInterface):
    """Input and target images paired by file name; the split into train and val is seeded, so repeatable."""

    def __init__(self, is_inference_db: bool = False, **kwargs):
        super().__init__(is_inference_db, **kwargs)
        # The seed is kept with the dataset: the same split is made again for inference or a rebuild.
        self.userdata.setdefault("seed", random.randint(0, 1 << 30))
        self.size = size_of(self.userdata.get("resize_width"), self.userdata.get("resize_height"))
        self._split = None

    @override
    def encode_entry(self, entry):
        input_path, target_path = entry
        if target_path is None:
            raise SkipEntry(f"no target image with the name of {input_path}")
        conversion = self.userdata.get("channel_conversion", "L")
        try:
            feature = load_pixels(input_path, conversion, self.size)
        except Exception as exc:  # noqa: BLE001 - an unreadable file is skipped with its reason
            raise SkipEntry(f"input {input_path}: {image_error_reason(exc)}") from exc
        try:
            label = load_pixels(target_path, conversion, self.size or (feature.shape[2], feature.shape[1]))
        except Exception as exc:  # noqa: BLE001
            raise SkipEntry(f"target {target_path}: {image_error_reason(exc)}") from exc
        return feature, label

    @staticmethod
    @override
    def get_category():
        return "Images"

    @staticmethod
    @override
    def get_id():
        return "image-processing"

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
        return "Processing"

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
