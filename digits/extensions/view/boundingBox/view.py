"""Shows detections: every output is a list of boxes ``[left, top, right, bottom, confidence]`` (a sixth
number, when there, is the class index: its name comes from the dataset's labels).

The boxes are drawn over the image in the page, so a threshold slider above the results hides those of
lower confidence without asking the server again."""

from __future__ import annotations

import numpy as np

from digits.extensions.view.boundingBox.forms import ConfigForm
from digits.extensions.view.imageSegmentation.view import PAIRED
from digits.extensions.view.interface import VisualizationInterface
from digits.utils import override, subclass
from digits.utils.image import embed_image_html, to_pil

CONFIG_TEMPLATE = "config_template.html"
HEADER_TEMPLATE = "header_template.html"
VIEW_TEMPLATE = "view_template.html"


def boxes_of(output, min_confidence: float) -> list[list[float]]:
    """The boxes of one output (an Nx5 array, or N boxes of 4 without confidence) above ``min_confidence``."""
    array = np.asarray(output, dtype=np.float64)
    if array.size == 0:
        return []
    array = array.reshape(-1, array.shape[-1])
    if array.shape[1] < 4:
        raise ValueError(f"a box needs 4 coordinates and a confidence, got rows of {array.shape[1]}")
    if array.shape[1] == 4:
        array = np.concatenate([array, np.ones((len(array), 1))], axis=1)
    # DIGITS' detection networks pad with all-zero rows: confidence 0 means no box.
    return [row[: min(len(row), 6)].tolist() for row in array if row[4] > min_confidence and row[4] > 0]


@subclass
class Visualization(VisualizationInterface):
    """Draws each output's boxes on the input, one colour per output, and lists them."""

    def __init__(self, dataset=None, **kwargs):
        super().__init__(dataset, **kwargs)
        self.min_confidence = float(kwargs.get("min_confidence") or 0.0)
        self.line_width = int(kwargs.get("line_width") or 2)
        self.image_count = 0
        self.bbox_count = 0
        self.dataset_detects = getattr(dataset, "extension_id", None) == "image-object-detection"

    @staticmethod
    @override
    def get_config_form():
        return ConfigForm()

    @staticmethod
    @override
    def get_config_template(form):
        return CONFIG_TEMPLATE, {"form": form}

    @override
    def get_header_template(self):
        # The slider starts at 0.5 for detections (lower ones are listed, hidden), at the minimum otherwise.
        threshold = max(self.min_confidence, 0.5 if self.dataset_detects else 0.0)
        return HEADER_TEMPLATE, {"image_count": self.image_count, "bbox_count": self.bbox_count, "threshold": threshold}

    @staticmethod
    @override
    def get_id():
        return "image-bounding-boxes"

    @staticmethod
    @override
    def get_title():
        return "Bounding boxes"

    @override
    def get_view_template(self, data):
        return VIEW_TEMPLATE, data

    @override
    def process_data(self, input_id, input_data, inference_data, ground_truth=None):
        image = to_pil(input_data).convert("RGB")
        labels = list(getattr(self.dataset, "labels", None) or [])
        bboxes = {}
        for number, (name, output) in enumerate(inference_data.items()):
            color = "#" + PAIRED[(2 * number + 1) % len(PAIRED)]
            found = boxes_of(output, self.min_confidence)
            bboxes[name] = {
                "color": color,
                "boxes": [box[:5] for box in found],
                "classes": [class_name(box, labels) for box in found],
                "shapes": [percent_box(box, image.size) for box in found],
            }
            self.bbox_count += len(found)
        self.image_count += 1
        return {"input_id": input_id, "image": embed_image_html(image), "bboxes": bboxes, "index": self.image_count,
                "line_width": self.line_width}  # fmt: skip


def class_name(box: list[float], labels: list[str]) -> str:
    """The class of a box with a sixth number (its index in ``labels``), or "" when it has none."""
    if len(box) < 6:
        return ""
    index = int(box[5])
    return labels[index] if 0 <= index < len(labels) else str(index)


def percent_box(box: list[float], size: tuple[int, int]) -> dict[str, float]:
    """Where a box lies on an image of ``size`` (width, height), in percent of it, for CSS."""
    width, height = size
    left, right = sorted((box[0], box[2]))
    top, bottom = sorted((box[1], box[3]))
    return {"left": 100 * left / width, "top": 100 * top / height,
            "width": 100 * (right - left) / width, "height": 100 * (bottom - top) / height}  # fmt: skip
