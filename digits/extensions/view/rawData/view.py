"""The default view: every output of the network, as numbers."""

from __future__ import annotations

import numpy as np

from digits.extensions.view.forms import NoConfigForm
from digits.extensions.view.interface import VisualizationInterface
from digits.utils import override, subclass

CONFIG_TEMPLATE = "config_template.html"
VIEW_TEMPLATE = "view_template.html"
MAX_VALUES = 64  # values shown per output; the JSON answer has all of them


def summarize(array) -> dict:
    """An output as the page shows it: shape, dtype, the first values, and min/max/mean of larger ones."""
    array = np.asarray(array)
    flat = array.ravel()
    numeric = array.dtype.kind in "biuf" and flat.size > 0
    return {
        "shape": list(array.shape),
        "dtype": array.dtype.name,
        "values": np.round(flat[:MAX_VALUES].astype(np.float64), 6).tolist() if numeric else [str(v) for v in flat[:8]],
        "truncated": flat.size > MAX_VALUES,
        "stats": {"min": float(flat.min()), "max": float(flat.max()), "mean": float(flat.mean())}
        if numeric and flat.size > 1
        else None,
    }


@subclass
class Visualization(VisualizationInterface):
    """Shows what the network returned, output by output."""

    @staticmethod
    @override
    def get_config_form():
        return NoConfigForm()

    @staticmethod
    @override
    def get_config_template(form):
        return CONFIG_TEMPLATE, {"form": form}

    @staticmethod
    @override
    def get_id():
        return "all-raw-data"

    @staticmethod
    @override
    def get_title():
        return "Raw Data"

    @override
    def get_view_template(self, data):
        return VIEW_TEMPLATE, {"data": data}

    @override
    def process_data(self, input_id, input_data, inference_data, ground_truth=None):
        return {name: summarize(value) for name, value in inference_data.items()}
