"""Detected boxes without TensorFlow: scoring against ground truth (precision, recall, mAP@0.5), boxes in the
original image's pixels, KITTI lines, and the labelled lists of Infer Many. The web process uses it.

A detection row is ``[left, top, right, bottom, confidence, class]``; a ground-truth row is a dataset's box
row ``[left, top, right, bottom, kind, class]`` (``digits.extensions.data.objectDetection.kitti``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from digits.data_roots import DataRootsCheck

IOU = 0.5  # a detection matches an object at this intersection over union (mAP@0.5)


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one box ``[l, t, r, b]`` with each of ``boxes`` [K, 4]."""
    width = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    height = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = width * height
    union = (box[2] - box[0]) * (box[3] - box[1]) + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) - inter
    return inter / np.maximum(union, 1e-9)


def _inside_share(box: np.ndarray, regions: np.ndarray) -> float:
    """The largest share of ``box``'s area inside one of ``regions``."""
    if not len(regions):
        return 0.0
    width = np.clip(np.minimum(box[2], regions[:, 2]) - np.maximum(box[0], regions[:, 0]), 0, None)
    height = np.clip(np.minimum(box[3], regions[:, 3]) - np.maximum(box[1], regions[:, 1]), 0, None)
    return float((width * height).max() / max((box[2] - box[0]) * (box[3] - box[1]), 1e-9))


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """The area under the precision-recall curve, precision made monotone (all points, as VOC since 2010)."""
    recall = np.concatenate([[0.0], recall, [1.0]])
    precision = np.concatenate([[0.0], precision, [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.nonzero(recall[1:] != recall[:-1])[0]
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def evaluate(detections: list, truths: list, classes: list[str], threshold: float = 0.5) -> dict[str, float]:
    """Score boxes against ground truth over a set of images.

    ``detections[i]`` are image i's rows ``[l, t, r, b, confidence, class]`` (rows of confidence 0 are
    padding), ``truths[i]`` its box rows (kind 1 objects, -1 regions to ignore). A detection matches an
    unmatched object of its class at IoU >= 0.5; one mostly inside a region to ignore counts for nothing.
    Returns ``mAP`` (the mean AP of the classes that have objects), ``precision`` and ``recall`` of the
    detections of confidence >= ``threshold``, and ``AP_<class>`` for each class with objects.
    """
    count = max(len(classes), 1)
    scored: list[list[tuple[float, bool]]] = [[] for _ in range(count)]
    objects = np.zeros(count, int)
    for found, truth in zip(detections, truths, strict=True):
        found = np.asarray(found, np.float64).reshape(-1, 6)
        truth = np.asarray(truth, np.float64).reshape(-1, 6)
        regions = truth[truth[:, 4] < 0, :4]
        for c in range(count):
            gt = truth[(truth[:, 4] > 0) & (truth[:, 5] == c), :4]
            objects[c] += len(gt)
            mine = found[(found[:, 4] > 0) & (found[:, 5] == c)]
            matched = np.zeros(len(gt), bool)
            for row in mine[np.argsort(-mine[:, 4], kind="stable")]:
                overlaps = iou(row[:4], gt) if len(gt) else np.zeros(0)
                overlaps[matched] = 0.0
                if len(gt) and overlaps.max() >= IOU:
                    matched[int(overlaps.argmax())] = True
                    scored[c].append((row[4], True))
                elif _inside_share(row[:4], regions) < 0.5:
                    scored[c].append((row[4], False))
    metrics: dict[str, float] = {}
    aps, hits, kept = [], 0, 0
    for c in range(count):
        ranked = sorted(scored[c], key=lambda s: -s[0])
        hits += sum(1 for score, good in ranked if good and score >= threshold)
        kept += sum(1 for score, _ in ranked if score >= threshold)
        if not objects[c]:
            continue
        good = np.cumsum([g for _, g in ranked]) if ranked else np.zeros(0)
        precision = good / np.arange(1, len(ranked) + 1) if ranked else np.zeros(0)
        ap = average_precision(good / objects[c], precision) if ranked else 0.0
        metrics[f"AP_{classes[c] if c < len(classes) else c}"] = ap
        aps.append(ap)
    total = int(objects.sum())
    metrics["mAP"] = float(np.mean(aps)) if aps else 0.0
    metrics["precision"] = hits / kept if kept else 0.0
    metrics["recall"] = hits / total if total else 0.0
    return metrics


def to_original(rows, scale) -> list[list[float]]:
    """Detection rows in input pixels -> the original image's pixels (``scale`` is original per input pixel,
    (x, y)); rows of confidence 0 (padding) are left out."""
    found = np.asarray(rows, np.float64).reshape(-1, 6)
    found = found[found[:, 4] > 0].copy()
    found[:, [0, 2]] *= scale[0]
    found[:, [1, 3]] *= scale[1]
    return [[round(float(v), 2) for v in row[:5]] + [int(row[5])] for row in found]


def bbox_answer(rows: list[list[float]], classes: list[str]) -> dict:
    """What ``outputs`` holds for one image: ``bbox-list`` ``[[left, top, right, bottom, confidence], ...]`` (as
    DIGITS' DetectNet answered) and ``bbox-classes``, the class name of each box."""
    return {
        "bbox-list": [row[:5] for row in rows],
        "bbox-classes": [classes[row[5]] if 0 <= row[5] < len(classes) else str(row[5]) for row in rows],
    }


def kitti_results(rows: list[list[float]], classes: list[str]) -> str:
    """One image's detections as a KITTI label file (the score last, as KITTI's results have it)."""
    from digits.extensions.data.objectDetection.kitti import kitti_line

    answer = bbox_answer(rows, classes)
    return "".join(
        kitti_line(name, box, box[4]) + "\n"
        for box, name in zip(answer["bbox-list"], answer["bbox-classes"], strict=True)
    )


def split_label_files(paths: list[str], folder: str, roots: Sequence[Path]) -> tuple[list[str], list, list[dict]]:
    """Infer Many's lines ``image [labels.txt]`` (as the list parser kept them, one path): the image paths,
    each one's KITTI label file or None, and the problems (a label file outside the data roots)."""
    images, labels, problems = [], [], []
    outside_data_roots = DataRootsCheck(roots)
    for path in paths:
        image, label = path, None
        parts = path.rsplit(None, 1)
        if len(parts) == 2 and parts[1].lower().endswith(".txt"):
            image, label = parts[0], os.path.abspath(os.path.join(folder, parts[1]))
            refused = outside_data_roots(label)
            if refused:
                problems.append({"path": label, "error": refused})
                label = None
        images.append(image)
        labels.append(label)
    return images, labels, problems


def score_list(results: list[dict], label_files: list, classes: list[str]) -> dict | None:
    """Precision, recall, mAP and AP per class of a labelled list (``results`` carry ``detections`` in
    original pixels and the image ``size``), or None when no image has a label file."""
    from digits.extensions.data.objectDetection.kitti import box_rows, parse_label_file

    found, truths = [], []
    for result, label in zip(results, label_files, strict=True):
        if label is None or "detections" not in result:
            continue
        try:
            objects = parse_label_file(label, "test", tuple(result["size"])).objects
        except OSError:
            continue
        found.append(np.asarray(result["detections"], np.float64).reshape(-1, 6))
        truths.append(box_rows(objects, classes, (1.0, 1.0)))
    return evaluate(found, truths, classes) if found else None


def kitti_zip(results: list[dict], classes: list[str]) -> str:
    """The detections of ``results`` as a zip of KITTI files (``<image name>.txt``), as a ``data:`` URL for a
    download link (lists answered at once are small)."""
    import base64
    import io
    import zipfile

    buffer = io.BytesIO()
    used: set[str] = set()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for result in results:
            if "detections" not in result:
                continue
            stem = os.path.splitext(os.path.basename(result["name"].rstrip("/")))[0] or "image"
            name, number = stem, 1
            while name in used:
                number += 1
                name = f"{stem}_{number}"
            used.add(name)
            archive.writestr(f"{name}.txt", kitti_results(result["detections"], classes))
    return "data:application/zip;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
