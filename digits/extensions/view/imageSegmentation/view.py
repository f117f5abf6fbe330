"""Shows a segmentation output: each pixel's class as a colour laid over the input, with a legend."""

from __future__ import annotations

import numpy as np
from PIL import Image

from digits.extensions.view.imageSegmentation.forms import ConfigForm
from digits.extensions.view.interface import VisualizationInterface
from digits.utils import override, subclass
from digits.utils.constants import COLOR_PALETTE_ATTRIBUTE
from digits.utils.image import embed_image_html, to_pil

CONFIG_TEMPLATE = "config_template.html"
HEADER_TEMPLATE = "header_template.html"
VIEW_TEMPLATE = "view_template.html"

# matplotlib's "Paired" colours (ColorBrewer), repeated for more classes.
PAIRED = ["a6cee3", "1f78b4", "b2df8a", "33a02c", "fb9a99", "e31a1c",
          "fdbf6f", "ff7f00", "cab2d6", "6a3d9a", "ffff99", "b15928"]  # fmt: skip


def palette_colors(colormap: str, dataset_palette: list[int] | None) -> np.ndarray:
    """A 256x3 uint8 table: the colour of each class index."""
    if colormap == "dataset":
        if not dataset_palette:
            raise ValueError("the dataset has no palette: choose the Paired or None colormap")
        values = list(dataset_palette)[: 256 * 3]
        values += [0] * (256 * 3 - len(values))
        return np.asarray(values, dtype=np.uint8).reshape(256, 3)
    if colormap == "paired":
        colors = [tuple(int(c[i : i + 2], 16) for i in (0, 2, 4)) for c in PAIRED]
        return np.asarray([colors[i % len(colors)] for i in range(256)], dtype=np.uint8)
    if colormap == "none":
        return np.repeat(np.arange(256, dtype=np.uint8)[:, np.newaxis], 3, axis=1)
    raise ValueError(f"unknown colormap {colormap!r}: use dataset, paired or none")


def class_map(output) -> np.ndarray:
    """The class of every pixel (HxW uint8) from an output CHW of class scores (argmax over C), or from a
    one-channel output (probabilities of the foreground when in [0, 1], else class indices)."""
    data = np.asarray(output)
    if data.ndim == 3 and data.shape[0] == 1:
        data = data[0]
    if data.ndim == 2:
        if data.dtype.kind == "f" and data.min() >= 0 and data.max() <= 1:
            return (data >= 0.5).astype(np.uint8)
        return np.clip(np.rint(data), 0, 255).astype(np.uint8)
    if data.ndim == 3:
        return np.argmax(data, axis=0).astype(np.uint8)
    raise ValueError(f"cannot read classes from an output of shape {tuple(data.shape)} (expected CHW)")


def overlay(image: Image.Image, classes: np.ndarray, colors: np.ndarray, opacity: float) -> Image.Image:
    """``image`` with every non-background pixel (class > 0) tinted with its class colour."""
    base = np.asarray(image.convert("RGB"), dtype=np.float32)
    tint = colors[classes].astype(np.float32)
    alpha = (classes > 0)[:, :, np.newaxis] * float(opacity)
    return Image.fromarray((base * (1 - alpha) + tint * alpha).astype(np.uint8))


def mask_image(classes: np.ndarray, colors: np.ndarray) -> Image.Image:
    """The classes' colours, background (class 0) transparent: laid over the input by the page."""
    rgba = np.zeros(classes.shape + (4,), dtype=np.uint8)
    rgba[:, :, :3] = colors[classes]
    rgba[:, :, 3] = np.where(classes > 0, 255, 0)
    return Image.fromarray(rgba, mode="RGBA")


@subclass
class Visualization(VisualizationInterface):
    """Colours each pixel by its most likely class, over the input image; a legend names the classes."""

    def __init__(self, dataset=None, **kwargs):
        super().__init__(dataset, **kwargs)
        userdata = getattr(dataset, "extension_userdata", None) or {}
        self.colors = palette_colors(kwargs.get("colormap") or "dataset", userdata.get(COLOR_PALETTE_ATTRIBUTE))
        opacity = kwargs.get("opacity")
        self.opacity = (50 if opacity is None else max(0, min(int(opacity), 100))) / 100.0
        self.class_labels = list(userdata.get("class_labels") or getattr(dataset, "labels", None) or [])
        self.found: dict[int, int] = {}  # class -> pixels, over every sample (for the header)
        self.samples = 0

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
        return "image-segmentation"

    @staticmethod
    @override
    def get_title():
        return "Image Segmentation"

    def class_name(self, index: int) -> str:
        return self.class_labels[index] if index < len(self.class_labels) else f"Class #{index}"

    def legend(self, counts: dict[int, int]) -> list[dict]:
        total = sum(counts.values()) or 1
        return [
            {"index": c, "text": self.class_name(c), "hex_color": "#" + bytes(self.colors[c]).hex(),
             "share": counts[c] / total}
            for c in sorted(counts)
        ]  # fmt: skip

    @override
    def get_header_template(self):
        return HEADER_TEMPLATE, {"opacity": round(self.opacity * 100), "legend": self.legend(self.found),
                                 "samples": self.samples}  # fmt: skip

    @override
    def get_view_template(self, data):
        return VIEW_TEMPLATE, data

    @override
    def process_data(self, input_id, input_data, inference_data, ground_truth=None):
        name = next((n for n, v in inference_data.items() if np.ndim(v) >= 2), None)
        if name is None:
            raise ValueError("no output has the shape of an image")
        classes = class_map(inference_data[name])
        if input_data is not None:
            image = to_pil(input_data).convert("RGB")
        else:
            image = Image.new("RGB", (classes.shape[1], classes.shape[0]))
        if image.size != (classes.shape[1], classes.shape[0]):
            classes = np.asarray(Image.fromarray(classes).resize(image.size, Image.Resampling.NEAREST))
        values, counts = np.unique(classes, return_counts=True)
        counts = {int(v): int(n) for v, n in zip(values, counts, strict=True)}
        for c, n in counts.items():
            self.found[c] = self.found.get(c, 0) + n
        self.samples += 1
        data = {
            "input_id": input_id,
            "output_name": name,
            "input_image": embed_image_html(image),
            "overlay_image": embed_image_html(overlay(image, classes, self.colors, self.opacity)),
            "mask_image": embed_image_html(mask_image(classes, self.colors)),
            "opacity": round(self.opacity * 100),
            "legend": self.legend(counts),
            "is_binary": np.ndim(inference_data[name]) == 3 and np.shape(inference_data[name])[0] == 2,
            "size": list(image.size),
            "ground_truth_image": None,
            "pixel_accuracy": None,
        }
        if ground_truth is not None and np.ndim(ground_truth) >= 2:
            truth = class_map(np.asarray(ground_truth).astype(np.int64))
            if truth.shape == classes.shape:
                data["ground_truth_image"] = embed_image_html(overlay(image, truth, self.colors, self.opacity))
                data["pixel_accuracy"] = float((truth == classes).mean())
        return data
