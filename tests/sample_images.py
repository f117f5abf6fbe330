"""Folders of real images for tests and benchmarks: scikit-learn's digits, and generated color images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_digits_folder(root: Path, per_class: int | None = None, size: int = 28, skip: int = 0) -> Path:
    """scikit-learn's handwritten digits (8x8, 0..16) written as ``size``x``size`` PNGs, one folder per class.

    ``skip`` leaves out the first images of each class: ``skip=per_class`` of another folder gives held-out images.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    counts: dict[int, int] = {}
    seen: dict[int, int] = {}
    for pixels, label in zip(digits.images, digits.target, strict=True):
        label = int(label)
        seen[label] = seen.get(label, 0) + 1
        if seen[label] <= skip or (per_class is not None and counts.get(label, 0) >= per_class):
            continue
        counts[label] = counts.get(label, 0) + 1
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        image = Image.fromarray((pixels * (255 / 16)).astype(np.uint8), mode="L").resize((size, size), Image.BILINEAR)
        image.save(folder / f"{label}_{counts[label]:04d}.png")
    return root


def write_color_folder(root: Path, classes: int = 4, per_class: int = 400) -> Path:
    """256x256 color JPEGs: a gradient per class with noise, one folder per class."""
    rng = np.random.default_rng(0)
    for c in range(classes):
        folder = root / f"class{c}"
        folder.mkdir(parents=True)
        base = np.linspace(0, 255, 256, dtype=np.float32)[None, :, None] * np.array([c % 2, 0.5, 1 - c % 2])
        for i in range(per_class):
            noise = rng.integers(0, 40, size=(256, 256, 3))
            Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)).save(folder / f"{i}.jpg", quality=90)
    return root
