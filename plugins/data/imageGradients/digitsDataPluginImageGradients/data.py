"""Synthetic regression data: every sample is a grayscale linear gradient, labelled with its two slopes."""

from __future__ import annotations

import random

import numpy as np

from digits.extensions.data.interface import DataIngestionInterface
from digits.utils import constants, override, subclass

from .forms import DatasetForm, InferenceForm

DATASET_TEMPLATE = "templates/dataset_template.html"
INFERENCE_TEMPLATE = "templates/inference_template.html"
# Slopes are drawn from [-MAX_SLOPE, MAX_SLOPE): at 0.5 the brightest corner of the steepest image is 255.
MAX_SLOPE = 0.5
STAGE_STREAMS = {constants.TRAIN_DB: 0, constants.VAL_DB: 1, constants.TEST_DB: 2}


def gradient_image(slope_x: float, slope_y: float, width: int, height: int) -> np.ndarray:
    """A ``height`` x ``width`` uint8 image, mid-gray (127.5) at its centre, whose brightness grows by
    ``255 * slope_x`` from its left edge to its right edge and by ``255 * slope_y`` from top to bottom."""
    # pixel centres as fractions of the image, from -0.5 (left, top) to 0.5 (right, bottom)
    across = (np.arange(width) + 0.5) / width - 0.5
    down = (np.arange(height) + 0.5) / height - 0.5
    pixels = 127.5 + 255.0 * (slope_x * across[np.newaxis, :] + slope_y * down[:, np.newaxis])
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def random_slopes(count: int, rng: np.random.Generator) -> list[tuple[float, float]]:
    """``count`` (x slope, y slope) pairs, uniform in [-MAX_SLOPE, MAX_SLOPE)."""
    return [(float(x), float(y)) for x, y in rng.uniform(-MAX_SLOPE, MAX_SLOPE, size=(count, 2))]


@subclass
class DataIngestion(DataIngestionInterface):
    """Gradient images made on the fly: an entry is a pair of slopes, the image is drawn from it.

    The label is the vector [x slope, y slope], so a network trained on the dataset learns to read a
    gradient's direction and steepness off an image (two regression outputs).
    """

    def __init__(self, is_inference_db: bool = False, **kwargs):
        super().__init__(is_inference_db, **kwargs)
        # Kept with the dataset: rebuilding it draws the same slopes.
        self.userdata.setdefault("seed", random.randint(0, 1 << 30))

    def rng(self, stage: str) -> np.random.Generator:
        """The random generator of one stage: train, val and test (and inference) draw different slopes."""
        return np.random.default_rng([self.userdata["seed"], STAGE_STREAMS[stage], int(self.is_inference_db)])

    @override
    def encode_entry(self, entry):
        slope_x, slope_y = entry
        image = gradient_image(slope_x, slope_y, int(self.image_width), int(self.image_height))
        return image[np.newaxis, ...], np.array([slope_x, slope_y], dtype=np.float32)

    @staticmethod
    @override
    def get_category():
        return "Images"

    @staticmethod
    @override
    def get_id():
        return "image-gradients"

    @staticmethod
    @override
    def get_dataset_form():
        return DatasetForm()

    @staticmethod
    @override
    def get_dataset_template(form):
        return DATASET_TEMPLATE, {"form": form}

    @override
    def get_inference_form(self):
        return InferenceForm()

    @staticmethod
    @override
    def get_inference_template(form):
        return INFERENCE_TEMPLATE, {"form": form}

    @staticmethod
    @override
    def get_title():
        return "Gradients"

    @override
    def itemize_entries(self, stage):
        if self.is_inference_db:
            if stage != constants.TEST_DB:
                return []
            if self.userdata.get("test_image_count"):
                return random_slopes(int(self.test_image_count), self.rng(stage))
            return [(float(self.gradient_x), float(self.gradient_y))]
        counts = {
            constants.TRAIN_DB: self.userdata.get("train_image_count"),
            constants.VAL_DB: self.userdata.get("val_image_count"),
            constants.TEST_DB: self.userdata.get("test_image_count"),
        }
        return random_slopes(int(counts.get(stage) or 0), self.rng(stage))
