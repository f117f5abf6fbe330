import os

import numpy as np
import PIL.Image
import PIL.ImageDraw

import digits
from digits.extensions.view.interface import VisualizationInterface
from digits.utils import override, subclass

from .forms import ConfigForm

CONFIG_TEMPLATE = "templates/config_template.html"
VIEW_TEMPLATE = "templates/view_template.html"
COLORS = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}


@subclass
class Visualization(VisualizationInterface):
    """
    A visualization extension to display image gradient magnitude and direction
    """

    def __init__(self, dataset, **kwargs):
        arrow_color = kwargs["arrow_color"]
        if arrow_color not in COLORS:
            raise ValueError(f"unknown color: {arrow_color}")
        self.color = COLORS[arrow_color]
        self.arrow_size = float(kwargs["arrow_size"])
        # image dimensions (HWC)
        image_shape = dataset.get_feature_dims()
        self.height = image_shape[0]
        self.width = image_shape[1]
        extension_dir = os.path.dirname(os.path.abspath(__file__))
        with open(os.path.join(extension_dir, VIEW_TEMPLATE)) as f:
            self.view_template = f.read()

    @staticmethod
    @override
    def get_config_form():
        return ConfigForm()

    @staticmethod
    @override
    def get_config_template(form):
        extension_dir = os.path.dirname(os.path.abspath(__file__))
        with open(os.path.join(extension_dir, CONFIG_TEMPLATE)) as f:
            template = f.read()
        return template, {"form": form}

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
        return self.view_template, {"gradients": data["gradients"], "image": data["image"]}

    @override
    def process_data(self, input_id, input_data, output_data, ground_truth=None):
        # assume a single output (x and y slopes) and a grayscale input
        output_vector = np.asarray(next(iter(output_data.values()))).ravel()
        grad = np.array([output_vector[0] * self.width, output_vector[1] * self.height])
        grad_rotated_90 = np.array([-grad[1], grad[0]])
        center = np.array([self.width / 2, self.height / 2])
        arrow = grad * (self.arrow_size / 100.0)
        arrow_tip = center + arrow / 2
        arrow_tail = center - arrow / 2
        # the two corners of the caret's base
        at_acw = arrow_tail + 0.1 * grad_rotated_90
        at_cw = arrow_tail - 0.1 * grad_rotated_90

        pixels = np.asarray(input_data)
        if pixels.ndim == 3 and pixels.shape[2] == 1:
            pixels = pixels[:, :, 0]
        image = PIL.Image.fromarray(pixels.astype("uint8")).convert("RGB")
        draw = PIL.ImageDraw.Draw(image)
        draw.line((at_acw[0], at_acw[1], arrow_tip[0], arrow_tip[1]), fill=self.color)
        draw.line((at_cw[0], at_cw[1], arrow_tip[0], arrow_tip[1]), fill=self.color)
        draw.line((at_acw[0], at_acw[1], at_cw[0], at_cw[1]), fill=self.color)

        image_html = digits.utils.image.embed_image_html(image)
        return {"image": image_html, "gradients": [float(output_vector[0]), float(output_vector[1])]}
