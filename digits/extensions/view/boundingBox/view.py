"""Shows detections: every output is a list of boxes ``[left, top, right, bottom, confidence]``."""

from __future__ import annotations

import numpy as np
from PIL import ImageDraw

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
    return [row[:5].tolist() for row in array if row[4] > min_confidence and row[4] > 0]


@subclass
class Visualization(VisualizationInterface):
    """Draws each output's boxes on the input, one colour per output, and lists them."""

    def __init__(self, dataset=None, **kwargs):
        super().__init__(dataset, **kwargs)
        self.min_confidence = float(kwargs.get("min_confidence") or 0.0)
        self.line_width = int(kwargs.get("line_width") or 2)
        self.image_count = 0
        self.bbox_count = 0

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
        return HEADER_TEMPLATE, {"image_count": self.image_count, "bbox_count": self.bbox_count}

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
        draw = ImageDraw.Draw(image)
        bboxes = {}
        for number, (name, output) in enumerate(inference_data.items()):
            color = "#" + PAIRED[(2 * number + 1) % len(PAIRED)]
            bboxes[name] = {"color": color, "boxes": boxes_of(output, self.min_confidence)}
            for left, top, right, bottom, _ in bboxes[name]["boxes"]:
                draw.rectangle(
                    (min(left, right), min(top, bottom), max(left, right), max(top, bottom)),
                    outline=color, width=self.line_width,
                )  # fmt: skip
            self.bbox_count += len(bboxes[name]["boxes"])
        self.image_count += 1
        return {"input_id": input_id, "image": embed_image_html(image), "bboxes": bboxes, "index": self.image_count}
