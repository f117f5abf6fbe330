"""Shows an image output of the network, beside its input."""

from __future__ import annotations

import numpy as np
from PIL import Image

from digits.extensions.view.imageOutput.forms import ConfigForm
from digits.extensions.view.interface import VisualizationInterface
from digits.utils import override, subclass
from digits.utils.image import embed_image_html, to_pil

CONFIG_TEMPLATE = "config_template.html"
VIEW_TEMPLATE = "view_template.html"


def output_image(data: np.ndarray, channel_order: str = "rgb", normalize: bool = True) -> Image.Image:
    """An output array as an image: CHW (DIGITS' layout; HWC is recognised when C is last and small) with
    1 or 3 channels, or HxW. ``normalize`` stretches its range to 0..255, else values are clipped."""
    data = np.asarray(data, dtype=np.float32)
    if data.ndim == 3 and data.shape[0] not in (1, 3) and data.shape[2] in (1, 3):
        data = data.transpose(2, 0, 1)  # HWC
    if data.ndim == 2:
        data = data[np.newaxis]
    if data.ndim != 3 or data.shape[0] not in (1, 3):
        raise ValueError(f"cannot show an output of shape {tuple(data.shape)} as an image (expected CHW, C 1 or 3)")
    if data.shape[0] == 3 and channel_order == "bgr":
        data = data[::-1]
    data = data.transpose(1, 2, 0)
    if normalize:
        data = data - data.min()
        if data.max() > 0:
            data = data * (255.0 / data.max())
    data = np.clip(np.nan_to_num(data), 0, 255).astype(np.uint8)
    return Image.fromarray(data[:, :, 0] if data.shape[2] == 1 else data)


@subclass
class Visualization(VisualizationInterface):
    """The first image-like output (or the only one) as a picture."""

    def __init__(self, dataset=None, **kwargs):
        super().__init__(dataset, **kwargs)
        self.channel_order = str(kwargs.get("channel_order") or "rgb").lower()
        self.normalize = (kwargs.get("pixel_conversion") or "normalize") == "normalize"
        self.show_input = bool(kwargs.get("show_input", True))

    @staticmethod
    @override
    def get_config_form():
        return ConfigForm()

    @staticmethod
    @override
    def get_config_template(form):
        return CONFIG_TEMPLATE, {"form": form}

    @staticmethod
    @override
    def get_id():
        return "image-image-output"

    @staticmethod
    @override
    def get_title():
        return "Image output"

    @override
    def get_view_template(self, data):
        return VIEW_TEMPLATE, data

    @override
    def process_data(self, input_id, input_data, inference_data, ground_truth=None):
        name = next((n for n, v in inference_data.items() if np.ndim(v) >= 2), None)
        if name is None:
            raise ValueError(f"no output is an image: outputs have shapes "
                             f"{ {n: list(np.shape(v)) for n, v in inference_data.items()} }")  # fmt: skip
        image = output_image(inference_data[name], self.channel_order, self.normalize)
        return {
            "input_id": input_id,
            "output_name": name,
            "image": embed_image_html(image),
            "size": list(image.size),
            "input_image": embed_image_html(to_pil(input_data)) if self.show_input and input_data is not None else None,
            "ground_truth": embed_image_html(output_image(ground_truth, self.channel_order, self.normalize))
            if ground_truth is not None and np.ndim(ground_truth) >= 2
            else None,
        }
