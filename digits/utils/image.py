"""Image helpers with the names DIGITS' plugins use (``digits.utils.image``): load, resize, embed in a page."""

from __future__ import annotations

import base64
import io
import os

import numpy as np
from PIL import Image

from digits.imaging import RESIZE_MODES
from digits.imaging import resize_image as _resize

SUPPORTED_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".gif", ".webp")


def load_image(path: str | os.PathLike) -> Image.Image:
    """Open an image file and decode it as ``RGB`` (colour) or ``L`` (gray); palette images stay ``P``.

    16-bit and float images are kept as Pillow decodes them. Raises OSError/ValueError for unreadable files.
    """
    image = Image.open(path)
    image.load()
    if image.mode in ("1", "LA"):
        image = image.convert("L")
    elif image.mode in ("RGBA", "CMYK", "YCbCr", "LAB", "HSV"):
        image = image.convert("RGB")
    return image


def resize_image(image, height: int, width: int, channels: int | None = None, resize_mode: str | None = None):
    """Resize a PIL image or HxW[xC] uint8 array; returns a uint8 array (HxW for one channel, HxWx3 else)."""
    if isinstance(image, np.ndarray):
        array = image[:, :, 0] if image.ndim == 3 and image.shape[2] == 1 else image
        image = Image.fromarray(array.astype(np.uint8))
    if channels is not None:
        image = image.convert("L" if channels == 1 else "RGB")
    elif image.mode not in ("L", "RGB"):
        image = image.convert("RGB")
    mode = resize_mode or "squash"
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize_mode must be one of {', '.join(RESIZE_MODES)}")
    return np.asarray(_resize(image, height, width, mode))


def to_pil(data) -> Image.Image:
    """A PIL image from a PIL image or an array (HxW, HxWx1, HxWx3/4; non-uint8 data scaled to 0..255)."""
    if isinstance(data, Image.Image):
        return data
    array = np.asarray(data)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.dtype != np.uint8:
        array = array.astype(np.float64)
        low, high = float(np.nanmin(array)), float(np.nanmax(array))
        if low < 0 or high > 255:
            array = (array - low) * (255.0 / ((high - low) or 1.0))
        array = np.clip(np.nan_to_num(array), 0, 255).astype(np.uint8)
    return Image.fromarray(array)


def embed_image_html(image) -> str:
    """A ``data:image/png;base64,...`` URI of ``image`` (PIL image or array) for an ``<img src>``."""
    if image is None:
        return ""
    buffer = io.BytesIO()
    to_pil(image).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
