"""A detection dataset from real images: scikit-learn's digits scattered on noisy canvases, KITTI labels beside.

``write_detection_folder(root, count)`` writes ``root/images/000000.png`` (128x128 grayscale) and
``root/labels/000000.txt`` (one KITTI line per digit, class names ``zero`` .. ``nine``). Digits are drawn
at random scales (``min_size`` to ``max_size`` pixels high) where they do not overlap. ``held_out=True``
draws from digits images the training canvases never use, for scoring on held-out canvases.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
CANVAS = 128
TRAIN_SHARE = 0.75  # of scikit-learn's 1797 digits; the rest draw the held-out canvases


def _digit_pool(held_out: bool) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    cut = int(len(digits.target) * TRAIN_SHARE)
    part = slice(cut, None) if held_out else slice(0, cut)
    return digits.images[part], digits.target[part]


def write_detection_folder(
    root: Path,
    count: int,
    *,
    seed: int = 0,
    held_out: bool = False,
    max_objects: int = 3,
    min_size: int = 16,
    max_size: int = 40,
    noise: float = 20.0,
) -> Path:
    """Write ``count`` canvases and their label files under ``root``; returns ``root``."""
    images, targets = _digit_pool(held_out)
    rng = np.random.default_rng(seed + (1_000_003 if held_out else 0))
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    for number in range(count):
        canvas = rng.normal(40.0, noise, (CANVAS, CANVAS))
        placed: list[tuple[int, int, int, int]] = []
        lines = []
        for _ in range(int(rng.integers(1, max_objects + 1))):
            size = int(rng.integers(min_size, max_size + 1))
            for _attempt in range(20):
                left, top = (int(v) for v in rng.integers(0, CANVAS - size, 2))
                box = (left, top, left + size, top + size)
                if all(box[2] <= p[0] or box[0] >= p[2] or box[3] <= p[1] or box[1] >= p[3] for p in placed):
                    break
            else:
                continue
            pick = int(rng.integers(len(targets)))
            digit = Image.fromarray((images[pick] * (255 / 16)).astype(np.uint8)).resize((size, size), Image.BILINEAR)
            region = canvas[top : top + size, left : left + size]
            canvas[top : top + size, left : left + size] = np.maximum(region, np.asarray(digit, np.float64))
            placed.append(box)
            # The 8x8 digits have a one-pixel margin: the box is the digit's cell, as a labeller would draw it.
            lines.append(f"{NAMES[int(targets[pick])]} 0.00 0 0.00 {left}.00 {top}.00 {left + size}.00 {top + size}.00"
                         " 0.00 0.00 0.00 0.00 0.00 0.00 0.00")  # fmt: skip
        name = f"{number:06d}"
        Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8)).save(root / "images" / f"{name}.png")
        (root / "labels" / f"{name}.txt").write_text("".join(line + "\n" for line in lines))
    return root
