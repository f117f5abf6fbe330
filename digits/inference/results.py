"""Classify Many's inputs and summaries: the ``path [label]`` list, top-1/top-5 accuracy, the confusion matrix."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from digits.data_roots import DataRootsCheck
from digits.inference.fetch import is_url


@dataclass
class ImageList:
    """A parsed list: paths (with the folder prefix applied), their labels (or None), and bad lines."""

    paths: list[str] = field(default_factory=list)
    labels: list[str | None] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)


def parse_image_list(
    text: str, labels: list[str], folder: str = "", limit: int | None = None, *, roots: Sequence[Path]
) -> ImageList:
    """Parse lines of ``path [label]``; a label is a class name or its index, as DIGITS' lists had them.

    Relative paths are joined to ``folder`` (to the server's directory without one) and kept absolute, so
    the image read is the one checked. A path outside the data ``roots`` is not kept: its line is reported,
    as is one whose label is out of range (that image is kept, unlabelled). A last word that is neither a
    class name nor a number is part of the path. ``limit`` keeps the first N images. A URL (as DIGITS'
    lists could name) is kept as it is, for the caller to fetch: it is not a server path.
    """
    parsed = ImageList()
    outside_roots = DataRootsCheck(roots)  # each folder of the list resolved once, not each line
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if limit is not None and len(parsed.paths) >= limit:
            break
        path, label, problem = line, None, None
        parts = line.rsplit(None, 1)
        if len(parts) == 2 and parts[1] in labels:
            path, label = parts
        elif len(parts) == 2 and parts[1].isdigit():
            path = parts[0]
            if int(parts[1]) < len(labels):
                label = labels[int(parts[1])]
            else:
                problem = f"label {parts[1]} is not a class index (the model has {len(labels)} classes)"
        path = path.strip('"')
        refused = None
        if not is_url(path):
            path = os.path.abspath(os.path.join(folder, path))
            refused = outside_roots(path)
        if refused or problem:
            parsed.problems.append({"line": number, "path": path, "error": refused or problem})
        if not refused:
            parsed.paths.append(path)
            parsed.labels.append(label)
    return parsed


def summarize(results: list[dict], truth: list[str | None], labels: list[str]) -> dict[str, Any] | None:
    """Top-1 and top-5 accuracy, accuracy per class and the confusion matrix over the labelled, classified images.

    The matrix is ``matrix[true class][predicted class]`` counts, rows and columns in ``labels`` order.
    Returns None when no classified image has a label.
    """
    index = {name: i for i, name in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    top1 = top5 = total = 0
    for result, label in zip(results, truth, strict=True):
        if label is None or "predictions" not in result:
            continue
        predicted = [name for name, _ in result["predictions"]]
        total += 1
        top1 += predicted[0] == label
        top5 += label in predicted[:5]
        matrix[index[label]][index[predicted[0]]] += 1
    if not total:
        return None
    per_class = {
        name: (row[i] / sum(row) if sum(row) else None)
        for i, (name, row) in enumerate(zip(labels, matrix, strict=True))
    }
    return {
        "count": total,
        "top1_accuracy": top1 / total,
        "top5_accuracy": top5 / total,
        "per_class_accuracy": per_class,
        "confusion_matrix": matrix,
        "labels": labels,
    }


def _record(result: dict) -> dict:
    """``{"record": index}`` for a result over a database (its picture is that record), else nothing."""
    return {"record": result["record"]} if "record" in result else {}


def top_n(results: list[dict], labels: list[str], count: int) -> dict[str, list[dict]]:
    """For each class, the ``count`` images the model is most sure belong to it (by that class's percent):
    ``{class: [{"name", "percent"} (and "record" over a database)]}``."""
    best: dict[str, list[dict]] = {name: [] for name in labels}
    for result in results:
        for name, percent in result.get("predictions", []):
            best[name].append({"name": result["name"], "percent": percent, **_record(result)})
    return {name: sorted(items, key=lambda item: -item["percent"])[:count] for name, items in best.items()}


def shape_results(mode: str, results: list[dict], labels: list, classes: list[str], problems: list, count: int) -> dict:
    """The answer of Classify Many (``classify_many``), Top N (``top_n``) or a generic model's Infer Many
    (``infer_*``: each image's output) from per-image results.

    ``problems`` are the list's bad lines; images that could not be classified join them as errors. Over a
    database, Classify Many's ``records`` maps each image to its record index (where its thumbnail is).
    """
    errors = problems + [{"path": r["name"], "error": r["error"]} for r in results if "error" in r]
    if mode.startswith("infer_"):
        return {"outputs": {r["name"]: {"output": r["outputs"]} for r in results if "outputs" in r}, "errors": errors}
    if mode == "top_n":
        return {"top_n": top_n(results, classes, count), "errors": errors}
    answer = {
        "classifications": {r["name"]: r["predictions"] for r in results if "predictions" in r},
        "labels": {r["name"]: label for r, label in zip(results, labels, strict=True) if label is not None},
        "summary": summarize(results, labels, classes),
        "errors": errors,
    }
    records = {r["name"]: r["record"] for r in results if "record" in r and "predictions" in r}
    if records:
        answer["records"] = records
    return answer
