"""KITTI label files: one ``.txt`` per image, one object a line, and the box rows records carry.

A line is ``class truncation occlusion alpha left top right bottom [height width length x y z rotation_y
[score]]``: the class (one word) and the box in the image's pixels are what detection uses; the other
numbers must be there (four of them, KITTI's first fields) and are not used.

A box row (what a detection dataset's label holds, one per object, padded to the dataset's most boxes):
``[left, top, right, bottom, kind, class]`` in the pixels of the stored (padded, resized) image, where
``kind`` is 1 for an object to detect, -1 for a region to ignore ("dontcare": KITTI's own, classes not kept,
validation boxes under the minimum size) and 0 for padding; ``class`` is the index in the class list (-1
when ignored). A ground-truth row reads like a detection of confidence ``kind``, so the bounding-box view
draws the objects and hides the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

COLUMNS = 6
OBJECT, DONTCARE, PADDING = 1.0, -1.0, 0.0
DONTCARE_NAMES = ("dontcare",)


@dataclass
class Problem:
    """A label line (or file) left out or changed, and why, for the dataset page."""

    stage: str
    path: str
    line: int | None
    reason: str

    def as_dict(self) -> dict:
        return {"stage": self.stage, "path": self.path, "line": self.line, "reason": self.reason}


@dataclass
class LabelFile:
    """The usable objects of one label file: ``(class name, [left, top, right, bottom])``, and the problems."""

    objects: list[tuple[str, list[float]]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def parse_label_file(path: str, stage: str, image_size: tuple[int, int]) -> LabelFile:
    """Read a KITTI label file for an image of ``image_size`` (width, height).

    Malformed lines and boxes wholly outside the image are skipped; boxes partly outside are clipped to
    the image. Each is listed as a :class:`Problem`.
    """
    width, height = image_size
    parsed = LabelFile()
    with open(path, errors="replace") as f:
        lines = f.read().splitlines()
    for number, line in enumerate(lines, start=1):
        words = line.split()
        if not words:
            continue

        def problem(reason: str, number: int = number) -> None:
            parsed.problems.append(Problem(stage, path, number, reason))

        if len(words) < 8:
            problem(f"malformed line (skipped): {len(words)} fields, KITTI lines have at least 8")
            continue
        try:
            numbers = [float(w) for w in words[1:8]]
        except ValueError:
            problem("malformed line (skipped): truncation, occlusion, alpha and the box must be numbers")
            continue
        left, top, right, bottom = numbers[3:7]
        if not all(np.isfinite(numbers)) or right <= left or bottom <= top:
            problem(f"malformed line (skipped): the box {left:g} {top:g} {right:g} {bottom:g} is empty or not finite")
            continue
        if right <= 0 or bottom <= 0 or left >= width or top >= height:
            problem(f"box outside the {width}x{height} image (skipped)")
            continue
        clipped = [max(left, 0.0), max(top, 0.0), min(right, float(width)), min(bottom, float(height))]
        if clipped != [left, top, right, bottom]:
            problem(f"box partly outside the {width}x{height} image (clipped to the image)")
        parsed.objects.append((words[0], clipped))
    return parsed


@dataclass
class Geometry:
    """How stored images are made from the originals: padded (top-left) to ``pad``, then resized to ``size``."""

    pad: tuple[int, int] | None = None  # width, height
    size: tuple[int, int] | None = None  # width, height

    def stored_size(self, original: tuple[int, int]) -> tuple[int, int]:
        return self.size or self.pad or original

    def scale(self, original: tuple[int, int]) -> tuple[float, float]:
        """Stored pixels per original pixel, (x, y)."""
        before = self.pad or original
        after = self.stored_size(original)
        return after[0] / before[0], after[1] / before[1]


def box_rows(
    objects: list[tuple[str, list[float]]], classes: list[str], scale: tuple[float, float], min_height: float = 0.0
) -> np.ndarray:
    """The box rows (module docstring) of one image's objects: classes not in ``classes`` and boxes lower
    than ``min_height`` stored pixels become regions to ignore."""
    index = {name.lower(): number for number, name in enumerate(classes)}
    rows = []
    for name, (left, top, right, bottom) in objects:
        box = [left * scale[0], top * scale[1], right * scale[0], bottom * scale[1]]
        number = index.get(name.lower())
        keep = number is not None and box[3] - box[1] >= min_height
        rows.append([*box, OBJECT if keep else DONTCARE, float(number) if keep else -1.0])
    return np.asarray(rows, np.float32).reshape(-1, COLUMNS)


def pad_rows(rows: np.ndarray, count: int) -> np.ndarray:
    """``rows`` followed by padding rows up to ``count``."""
    padded = np.zeros((count, COLUMNS), np.float32)
    padded[: len(rows)] = rows
    padded[len(rows) :, 5] = -1.0
    return padded


def kitti_line(name: str, box, score: float | None = None) -> str:
    """One KITTI line for a box (truncation, occlusion, alpha and 3-D fields unknown), with a score when given."""
    left, top, right, bottom = (float(v) for v in box[:4])
    line = f"{name} 0.00 0 0.00 {left:.2f} {top:.2f} {right:.2f} {bottom:.2f} 0.00 0.00 0.00 0.00 0.00 0.00 0.00"
    return line + (f" {score:.4f}" if score is not None else "")
