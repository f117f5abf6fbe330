"""The image gradients view: a regression model's two outputs, read as the x and y slopes of the input's
gradient, drawn as an arrow across the input image."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from digits.extensions.view.interface import VisualizationInterface
from digits.utils import override, subclass
from digits.utils.image import embed_image_html, to_pil

from .forms import COLORS, ConfigForm

CONFIG_TEMPLATE = "templates/config_template.html"
VIEW_TEMPLATE = "templates/view_template.html"
# Small inputs are enlarged to about this many pixels across, so the arrow is drawn finer than their pixels.
SHOWN_SIZE = 128


def arrow(slopes: tuple[float, float], width: int, height: int, size_pct: float) -> tuple[np.ndarray, np.ndarray]:
    """Tail and tip (x, y in pixels) of the arrow for a gradient on a ``width`` x ``height`` image.

    The arrow is centred on the image and points the way the image gets brighter; its length is the
    gradient's own (the slope times the image's size, per axis) times ``size_pct`` / 100.
    """
    along = np.array([slopes[0] * width, slopes[1] * height]) * (size_pct / 100.0)
    centre = np.array([width / 2.0, height / 2.0])
    return centre - along / 2, centre + along / 2


def draw_arrow(image: Image.Image, tail: np.ndarray, tip: np.ndarray, color: tuple[int, int, int]) -> None:
    """A shaft from ``tail`` to ``tip`` and a filled head at ``tip``, drawn on ``image`` in place."""
    draw = ImageDraw.Draw(image)
    shaft = tip - tail
    length = float(np.hypot(*shaft))
    line_width = max(1, round(min(image.size) / 64))
    if length < 1:
        # no direction to speak of: a dot where the arrow would be
        radius = 1.5 * line_width
        draw.ellipse([tip[0] - radius, tip[1] - radius, tip[0] + radius, tip[1] + radius], fill=color)
        return
    unit = shaft / length
    normal = np.array([-unit[1], unit[0]])
    head = min(length / 3, 4.0 * line_width + 2)
    base = tip - unit * head
    draw.line([tuple(tail), tuple(base)], fill=color, width=line_width)
    draw.polygon([tuple(tip), tuple(base + normal * head / 2), tuple(base - normal * head / 2)], fill=color)


def slopes_of(output) -> tuple[float, float]:
    """The (x, y) slopes a network output holds: its first two values."""
    values = np.asarray(output, dtype=np.float64).ravel()
    if values.size < 2:
        raise ValueError(f"the output has {values.size} value(s); the gradients view needs two (x and y slopes)")
    return float(values[0]), float(values[1])


@subclass
class Visualization(VisualizationInterface):
    """The predicted gradient as an arrow on the input, with the two slopes as numbers."""

    def __init__(self, dataset=None, **kwargs):
        super().__init__(dataset, **kwargs)
        color = kwargs.get("arrow_color") or "red"
        if color not in COLORS:
            raise ValueError(f"unknown arrow colour {color!r}: choose one of {', '.join(COLORS)}")
        self.color = COLORS[color]
        self.arrow_size = float(kwargs.get("arrow_size") or 80)

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
        return "image-gradients"

    @staticmethod
    @override
    def get_title():
        return "Gradients"

    @override
    def get_view_template(self, data):
        return VIEW_TEMPLATE, data

    @override
    def process_data(self, input_id, input_data, inference_data, ground_truth=None):
        if not inference_data:
            raise ValueError("no output to show: the gradients view needs an output of two values")
        # A gradients model has a single output; with several, the first one is read.
        slopes = slopes_of(next(iter(inference_data.values())))
        image = to_pil(input_data).convert("RGB")
        width, height = image.size
        scale = max(1, SHOWN_SIZE // max(width, height))
        image = image.resize((width * scale, height * scale), Image.Resampling.NEAREST)
        tail, tip = arrow(slopes, width, height, self.arrow_size)
        draw_arrow(image, tail * scale, tip * scale, self.color)
        return {
            "image": embed_image_html(image),
            "gradients": list(slopes),
            "truth": list(slopes_of(ground_truth)) if np.size(ground_truth) >= 2 else None,
        }
