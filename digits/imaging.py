"""Loading, resizing and encoding dataset images with Pillow.

Used by the database tools and by inference; it imports neither TensorFlow nor Flask, so the web
process and the ``create_db`` workers stay light.
"""

from __future__ import annotations

import io
import os
import re
import struct
from typing import BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

RESIZE_MODES = ("squash", "crop", "fill", "half_crop")
DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's own MAX_IMAGE_PIXELS
JPEG_QUALITY = 90
# zlib level 1 is several times faster than Pillow's default (6) and the files are only a few percent
# larger; dataset creation is CPU-bound on encoding while the extra bytes cost nothing when training
# reads them back.
PNG_COMPRESS_LEVEL = 1
RESAMPLE = Image.Resampling.BILINEAR

_MODE_BY_CHANNELS = {1: "L", 3: "RGB"}


class ImageError(ValueError):
    """An image that cannot be used; ``reason`` says why in words for the user."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def open_image(path_or_file: str | os.PathLike | BinaryIO, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open an image, reading its header only; returns the (not yet decoded) PIL image.

    Images over ``max_pixels`` are refused before any pixel is decoded. Raises :class:`ImageError` with the
    reason when the file is not an image or is too large.
    """
    try:
        img = Image.open(path_or_file)
    except FileNotFoundError:
        raise ImageError("file not found") from None
    except IsADirectoryError:
        raise ImageError("is a directory, not an image file") from None
    except UnidentifiedImageError:
        raise ImageError("not an image (format not recognized)") from None
    except Image.DecompressionBombError as exc:
        raise ImageError(_bomb_reason_from_pillow(str(exc), max_pixels)) from None
    except OSError as exc:
        raise ImageError(f"cannot read the file: {exc}") from None
    width, height = img.size
    if width * height > max_pixels:
        img.close()
        raise ImageError(
            f"image is {width}x{height} ({width * height / 1e6:.1f} megapixels), "
            f"over the {max_pixels / 1e6:.1f} megapixel limit"
        )
    return img


def check_pixels(height: int, width: int, what: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Raise :class:`ImageError` when a ``height`` x ``width`` array (``what``: "record 12") is over ``max_pixels``."""
    if height * width > max_pixels:
        raise ImageError(
            f"{what} is {width}x{height} ({height * width / 1e6:.1f} megapixels), "
            f"over the {max_pixels / 1e6:.1f} megapixel limit"
        )


def load_image(
    path_or_file: str | os.PathLike | BinaryIO,
    channels: int,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    draft_size: tuple[int, int] | None = None,
) -> Image.Image:
    """Open and fully decode an image as mode ``"L"`` (``channels=1``) or ``"RGB"`` (``channels=3``).

    ``draft_size`` (width, height) is the size the image will be resized to: a JPEG much larger than
    that is decoded at a reduced scale (never below that size), which is several times faster.
    Images over ``max_pixels`` are refused from their header, before any pixel is decoded.
    Returns a loaded PIL image; raises :class:`ImageError` with the reason when the file is unusable.
    """
    if channels not in _MODE_BY_CHANNELS:
        raise ValueError(f"channels must be 1 or 3, not {channels}")
    mode = _MODE_BY_CHANNELS[channels]
    img = open_image(path_or_file, max_pixels=max_pixels)
    try:
        if draft_size is not None and img.format == "JPEG":
            img.draft(mode if img.mode == "RGB" else None, draft_size)
        # Animated images (GIF, APNG, WebP) open on their first frame; loading decodes only that one.
        img.load()
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        img.close()
        raise ImageError(f"corrupt or truncated image: {exc}") from None
    return _to_mode(img, mode)


def _bomb_reason_from_pillow(message: str, max_pixels: int) -> str:
    # Pillow refuses images over twice its own limit inside Image.open, before we see the size;
    # its message carries the pixel count.
    match = re.search(r"\((\d+) pixels\)", message)
    if not match:
        return f"image is over the {max_pixels / 1e6:.1f} megapixel limit"
    pixels = int(match.group(1))
    return f"image is {pixels / 1e6:.1f} megapixels, over the {max_pixels / 1e6:.1f} megapixel limit"


def _to_mode(img: Image.Image, mode: str) -> Image.Image:
    if img.mode == mode:
        return img
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        img = _to_8bit(img)
    elif img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Composite on white: transparent pixels keep whatever colour the encoder left there, which
        # is often black garbage.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba).convert("RGB")
    # Pillow converts CMYK (including Adobe's inverted JPEGs), palette, 1-bit and YCbCr correctly;
    # RGB -> L uses the ITU-R 601 luma weights.
    return img.convert(mode)


def _to_8bit(img: Image.Image) -> Image.Image:
    # Converting "I;16"/"I" to "L" in Pillow clips at 255 (almost everything turns white); scale instead.
    array = np.asarray(img)
    if img.mode.startswith("I;16"):
        scaled = array.astype(np.uint32) * 255 // 65535
    elif img.mode == "I" and array.min() >= 0 and array.max() <= 65535:
        # A 16-bit PNG decoded as 32-bit int: its range is still 16 bits (unless it already fits 8).
        scaled = array if array.max() <= 255 else array.astype(np.int64) * 255 // 65535
    else:
        low, high = float(array.min()), float(array.max())
        span = high - low or 1.0
        scaled = (array.astype(np.float64) - low) * (255.0 / span)
    return Image.fromarray(np.asarray(scaled, dtype=np.uint8), mode="L")


def resize_image(
    img: Image.Image, height: int, width: int, mode: str, rng: np.random.Generator | None = None
) -> Image.Image:
    """Resize ``img`` to ``width`` x ``height`` the way DIGITS did.

    - ``squash``: stretch to the size, ignoring the aspect ratio;
    - ``crop``: scale to cover the size, keeping the aspect ratio, and cut the centre;
    - ``fill``: scale to fit inside the size and fill the borders with random noise;
    - ``half_crop``: scale half-way between ``crop`` and ``fill``, cut the long side, fill the short one.

    Returns a new image of the same mode (or ``img`` itself when nothing needs to change).
    """
    if mode not in RESIZE_MODES:
        raise ValueError(f"unknown resize mode {mode!r}, expected one of {', '.join(RESIZE_MODES)}")
    if img.size == (width, height):
        return img
    width_ratio = img.width / width
    height_ratio = img.height / height
    if mode == "squash" or width_ratio == height_ratio:
        return img.resize((width, height), RESAMPLE)
    if mode == "crop":
        ratio = min(width_ratio, height_ratio)
    elif mode == "fill":
        ratio = max(width_ratio, height_ratio)
    else:
        ratio = (width_ratio + height_ratio) / 2.0
    scaled_w = max(1, round(img.width / ratio))
    scaled_h = max(1, round(img.height / ratio))
    scaled = img.resize((scaled_w, scaled_h), RESAMPLE)
    # Cut the centre of whichever side is too long...
    keep_w, keep_h = min(scaled_w, width), min(scaled_h, height)
    left, top = (scaled_w - keep_w) // 2, (scaled_h - keep_h) // 2
    if (keep_w, keep_h) != (scaled_w, scaled_h):
        scaled = scaled.crop((left, top, left + keep_w, top + keep_h))
    if (keep_w, keep_h) == (width, height):
        return scaled
    # ...and centre the result on noise where it is too short.
    rng = rng or np.random.default_rng()
    noise_shape = (height, width) if img.mode == "L" else (height, width, len(img.getbands()))
    canvas = Image.fromarray(rng.integers(0, 256, noise_shape, dtype=np.uint8), mode=img.mode)
    canvas.paste(scaled, ((width - keep_w) // 2, (height - keep_h) // 2))
    return canvas


def encode_image(img: Image.Image, encoding: str) -> tuple[bytes, str]:
    """Encode ``img`` for a dataset record.

    ``encoding`` is ``"none"`` (raw uint8 HxWxC pixels), ``"png"`` or ``"jpg"`` (quality 90).
    Returns ``(bytes, format)`` where format is ``"raw"``, ``"png"`` or ``"jpg"``.
    """
    if encoding == "none":
        # Pillow's raw layout for "L" and "RGB" is already row-major HxWxC uint8.
        return img.tobytes(), "raw"
    buffer = io.BytesIO()
    if encoding == "png":
        img.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
        return buffer.getvalue(), "png"
    if encoding == "jpg":
        img.save(buffer, format="JPEG", quality=JPEG_QUALITY)
        return buffer.getvalue(), "jpg"
    raise ValueError(f"unknown encoding {encoding!r}, expected none, png or jpg")


def is_plain_png(data: bytes, height: int, width: int, channels: int) -> bool:
    """Whether ``data`` is a PNG that ``encode_image(..., "png")`` could only re-encode to the same pixels.

    True for a non-interlaced, non-animated, 8-bit gray (``channels=1``) or RGB (``channels=3``) PNG of
    exactly ``width`` x ``height``: such a file can be stored as it is. Reads the header only.
    """
    if len(data) < 33 or not data.startswith(b"\x89PNG\r\n\x1a\n") or data[12:16] != b"IHDR":
        return False
    png_width, png_height, depth, color_type, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    return (
        (png_width, png_height) == (width, height)
        and depth == 8
        and color_type == {1: 0, 3: 2}.get(channels)
        and interlace == 0
        and b"acTL" not in data  # animated PNG: the stored default image need not be the first frame
    )


def image_to_array(img: Image.Image) -> np.ndarray:
    """Return the pixels of an ``"L"`` or ``"RGB"`` image as a uint8 HxWxC array (C=1 for grayscale)."""
    array = np.asarray(img, dtype=np.uint8)
    return array[:, :, np.newaxis] if array.ndim == 2 else array
