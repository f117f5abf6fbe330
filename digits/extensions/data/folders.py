"""Folder helpers of the built-in image data extensions: list images, pair them by name, split off validation."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
from PIL import Image
from wtforms.validators import StopValidation, ValidationError

from digits.data_roots import outside_data_roots
from digits.imaging import ImageError, load_image
from digits.utils.image import SUPPORTED_EXTENSIONS


def _check_roots(form, path: str) -> None:
    # The app sets ``roots`` on the forms it builds (dataset and inference forms alike): a built-in extension
    # then reads server paths only inside the data roots, as DIGITS' own forms do.
    roots = getattr(form, "roots", None)
    problem = outside_data_roots(path, roots) if roots is not None else None
    if problem:
        raise StopValidation(problem)


def validate_folder(form, field) -> None:
    """WTForms validator: an empty field passes (DataRequired says if it may not), else a readable folder
    (inside the form's data roots when it has them)."""
    path = (field.data or "").strip()
    if not path:
        return
    _check_roots(form, path)
    if not os.path.isdir(path):
        raise ValidationError(f"{path} is not a folder on the server.")
    if not os.access(path, os.R_OK | os.X_OK):
        raise ValidationError(f"The server cannot read {path}: check its permissions.")


def validate_file(form, field) -> None:
    """WTForms validator: an empty field passes, else a readable file (inside the form's data roots when it
    has them)."""
    path = (field.data or "").strip()
    if not path:
        return
    _check_roots(form, path)
    if not os.path.isfile(path):
        raise ValidationError(f"{path} is not a file on the server.")


def list_images(folder: str) -> dict[str, str]:
    """Image files under ``folder`` (recursively), keyed by their path relative to it without extension."""
    images = {}
    for base, dirs, names in os.walk(folder, followlinks=True):
        dirs.sort()
        for name in sorted(names):
            if name.lower().endswith(SUPPORTED_EXTENSIONS) and not name.startswith("."):
                path = os.path.join(base, name)
                images.setdefault(os.path.splitext(os.path.relpath(path, folder))[0], path)
    if not images:
        raise ValueError(f"no images found in {folder}")
    return images


def pair_by_name(input_folder: str, target_folder: str) -> list[tuple[str, str | None]]:
    """``(input, target)`` paths of the images of both folders with the same name (extensions may differ).

    An input without a target is paired with None (the extension skips it with a reason); a target
    without an input is ignored.
    """
    inputs, targets = list_images(input_folder), list_images(target_folder)
    return [(path, targets.get(name)) for name, path in sorted(inputs.items())]


def split(pairs: list, pct_val: int, seed: int) -> tuple[list, list]:
    """Shuffle ``pairs`` with ``seed``; returns (train, val), ``pct_val`` percent of the whole pairs in val.

    Pairs without a target cannot become samples: they go to train, where they are skipped with their reason,
    so they never take validation's places (a val share of only unusable pairs would make val empty).
    """
    whole = [pair for pair in pairs if pair[1] is not None]
    random.Random(seed).shuffle(whole)
    n_val = len(whole) * max(0, min(int(pct_val or 0), 100)) // 100
    return whole[n_val:] + [pair for pair in pairs if pair[1] is None], whole[:n_val]


def load_pixels(path: str, channel_conversion: str, size: tuple[int, int] | None) -> np.ndarray:
    """An image file as a CHW uint8 array: ``channel_conversion`` "L", "RGB" or "none" (as stored), resized
    to ``size`` (width, height) when given. Raises ImageError with the reason for an unusable file."""
    if channel_conversion == "none":
        with Image.open(path) as probe:
            channels = 1 if probe.mode in ("1", "L", "I", "I;16", "F", "LA") else 3
    else:
        channels = 1 if channel_conversion == "L" else 3
    image = load_image(path, channels)
    if size and image.size != size:
        image = image.resize(size, Image.Resampling.BILINEAR)
    array = np.asarray(image, dtype=np.uint8)
    return array[np.newaxis] if array.ndim == 2 else array.transpose(2, 0, 1)


def image_error_reason(exc: Exception) -> str:
    return exc.reason if isinstance(exc, ImageError) else f"{type(exc).__name__}: {exc}"


def size_of(width, height) -> tuple[int, int] | None:
    """(width, height) when both are set (and positive), else None: keep the images' own size."""
    return (int(width), int(height)) if width and height and int(width) > 0 and int(height) > 0 else None


def template_path(module_file: str, name: str) -> str:
    return str(Path(module_file).resolve().parent / name)
