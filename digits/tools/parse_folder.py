"""Turn a folder of class sub-folders into DIGITS list files: ``labels.txt``, ``train.txt``, ``val.txt``, ``test.txt``.

    python -m digits.tools.parse_folder FOLDER --out-dir DIR [--pct-val 25] [--pct-test 0]
        [--min-per-class 2] [--max-per-class N] [--seed 0]
        [--val-folder F [--val-min-per-class N] [--val-max-per-class N]]
        [--test-folder F [--test-min-per-class N] [--test-max-per-class N]]

Each sub-folder of FOLDER is a class (its name is the label); its images are found recursively. Links are
followed only when they point inside FOLDER (a link out of it, or a loop, is skipped).
List lines are ``"<absolute path> <label index>"``: the label follows the last space, so paths may
contain spaces. Emits ``progress`` while scanning and a final ``result`` event (see :func:`main`).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections.abc import Iterator, Sequence

from digits.tools.protocol import ProgressReporter, emit, run_tool
from digits.utils.constants import STAGES, TEST_DB, TRAIN_DB, VAL_DB

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".gif", ".tif", ".tiff", ".webp")


class ScanBudget:
    """How much of a folder a scan may look at: ``entries`` directory entries and ``seconds`` of time (None: all).

    ``spend()`` counts one entry and says whether the scan may go on; ``exhausted`` stays True once it may not.
    """

    def __init__(self, entries: int | None = None, seconds: float | None = None):
        self.entries_left = entries
        self.deadline = time.monotonic() + seconds if seconds is not None else None
        self.exhausted = False

    def spend(self) -> bool:
        if self.entries_left is not None:
            self.entries_left -= 1
            self.exhausted = self.exhausted or self.entries_left < 0
        if self.deadline is not None and not self.exhausted:
            self.exhausted = time.monotonic() > self.deadline
        return not self.exhausted


def _inside(path: str, top: str) -> bool:
    """Whether ``path`` (a link's target, resolved) lies inside the resolved folder ``top``."""
    real = os.path.realpath(path)
    return real.startswith(top.rstrip(os.sep) + os.sep)


def find_classes(folder: str, budget: ScanBudget | None = None) -> list[str]:
    """Return the class sub-folder names of ``folder``, sorted case-insensitively, hidden ones left out.

    A sub-folder that is a link is a class only when it points inside ``folder``. Stops early when the
    ``budget`` is spent (the caller checks ``budget.exhausted``).
    """
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"folder {folder!r} does not exist or is not a folder")
    top = os.path.realpath(folder)
    names = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if budget is not None and not budget.spend():
                break
            if entry.name.startswith(".") or not entry.is_dir():
                continue
            if entry.is_symlink() and not _inside(entry.path, top):
                continue
            names.append(entry.name)
    return sorted(names, key=lambda name: (name.lower(), name))


def iter_images(folder: str, top: str | None = None, budget: ScanBudget | None = None) -> Iterator[str]:
    """Yield the absolute paths of the image files under ``folder`` (recursively), hidden ones left out.

    Links are followed only to files and folders inside ``top`` (``folder`` by default), each folder once,
    so a link out of the folder (to ``/proc``, to another tree) or a link loop is never walked. Stops when
    the ``budget`` is spent.
    """
    top = os.path.realpath(top or folder)
    seen: set[tuple[int, int]] = set()
    pending = [os.path.abspath(folder)]
    while pending:
        directory = pending.pop()
        try:
            info = os.stat(directory)
            if (info.st_dev, info.st_ino) in seen:
                continue
            seen.add((info.st_dev, info.st_ino))
            entries = os.scandir(directory)
        except OSError:
            continue
        with entries:
            for entry in entries:
                if budget is not None and not budget.spend():
                    return
                if entry.name.startswith("."):
                    continue
                try:
                    if entry.is_symlink() and not _inside(entry.path, top):
                        continue
                    if entry.is_dir():
                        pending.append(entry.path)
                    elif entry.name.lower().endswith(IMAGE_EXTENSIONS) and entry.is_file():
                        yield entry.path
                except OSError:
                    continue


def find_images(folder: str, top: str | None = None) -> list[str]:
    """Return the absolute paths of the image files under ``folder`` (as :func:`iter_images` finds them), sorted."""
    return sorted(iter_images(folder, top))


def scan_folder(
    folder: str, min_per_class: int, max_per_class: int | None, rng: random.Random, where: str
) -> tuple[dict[str, list[str]], list[dict]]:
    """Find the images of each class of ``folder`` and apply the per-class limits.

    Returns ``(images by class name, dropped classes)``; images are shuffled, and subsampled to
    ``max_per_class``; a class with fewer than ``min_per_class`` images is dropped.
    """
    classes = find_classes(folder)
    progress = ProgressReporter(len(classes))
    kept: dict[str, list[str]] = {}
    dropped = []
    for done, name in enumerate(classes, start=1):
        images = find_images(os.path.join(folder, name), top=folder)
        rng.shuffle(images)
        if len(images) < min_per_class:
            reason = f"{len(images)} images in the {where}, fewer than the minimum of {min_per_class}"
            dropped.append({"name": name, "count": len(images), "reason": reason})
        else:
            kept[name] = images[:max_per_class] if max_per_class else images
        progress.update(done, stage=where)
    return kept, dropped


def split_class(images: list[str], pct_val: float, pct_test: float) -> dict[str, list[str]]:
    """Split one class's (already shuffled) images into stages by percentage; returns images by stage."""
    n_val = round(len(images) * pct_val / 100)
    n_test = round(len(images) * pct_test / 100)
    return {
        VAL_DB: images[:n_val],
        TEST_DB: images[n_val : n_val + n_test],
        TRAIN_DB: images[n_val + n_test :],
    }


def parse_folders(args: argparse.Namespace) -> dict:
    """Scan the folders and split them.

    Returns ``{"labels": [names], "stages": {stage: {name: [paths]}}, "dropped_classes": [...]}``.
    """
    rng = random.Random(args.seed)
    train, dropped = scan_folder(args.folder, args.min_per_class, args.max_per_class, rng, "training folder")
    labels = sorted(train, key=lambda name: (name.lower(), name))
    if len(labels) < 2:
        raise ValueError(
            f"need at least 2 classes with at least {args.min_per_class} images each in {args.folder!r}, "
            f"found {len(labels)}"
        )
    stages: dict[str, dict[str, list[str]]] = {stage: {} for stage in STAGES}
    for name in labels:
        for stage, images in split_class(train[name], args.pct_val, args.pct_test).items():
            stages[stage][name] = images
    for stage, folder, min_count, max_count in (
        (VAL_DB, args.val_folder, args.val_min_per_class, args.val_max_per_class),
        (TEST_DB, args.test_folder, args.test_min_per_class, args.test_max_per_class),
    ):
        if not folder:
            continue
        where = f"{stage} folder"
        found, dropped_here = scan_folder(folder, min_count, max_count, rng, where)
        dropped.extend(dropped_here)
        for name, images in found.items():
            if name in train:
                stages[stage][name] = images
            else:
                reason = f"class of the {where} is not a class of the training folder"
                dropped.append({"name": name, "count": len(images), "reason": reason})
    return {"labels": labels, "stages": stages, "dropped_classes": dropped}


def write_lists(out_dir: str, labels: list[str], stages: dict[str, dict[str, list[str]]], rng: random.Random) -> dict:
    """Write ``labels.txt`` and one list file per non-empty stage (always ``train.txt``).

    Returns the summary per written stage: ``{stage: {"entries": n, "distribution": {name: n}}}``.
    """
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "labels.txt"), "w") as f:
        f.writelines(f"{name}\n" for name in labels)
    summary = {}
    for stage in STAGES:
        by_class = stages[stage]
        lines = [f"{path} {index}\n" for index, name in enumerate(labels) for path in by_class.get(name, [])]
        if not lines and stage != TRAIN_DB:
            continue
        # Interleave the classes: create_db shuffles too, but a list read in order should not be sorted by class.
        rng.shuffle(lines)
        with open(os.path.join(out_dir, f"{stage}.txt"), "w") as f:
            f.writelines(lines)
        summary[stage] = {
            "entries": len(lines),
            "distribution": {name: len(by_class.get(name, [])) for name in labels},
        }
    return summary


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m digits.tools.parse_folder", description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="training folder: one sub-folder per class")
    parser.add_argument("--out-dir", required=True, help="where to write labels.txt and the list files")
    parser.add_argument("--pct-val", type=float, default=0.0, help="percentage of each class for validation")
    parser.add_argument("--pct-test", type=float, default=0.0, help="percentage of each class for testing")
    parser.add_argument("--min-per-class", type=int, default=2, help="drop classes with fewer images")
    parser.add_argument("--max-per-class", type=int, default=None, help="keep at most this many images per class")
    parser.add_argument("--val-folder", help="separate validation folder (instead of --pct-val)")
    parser.add_argument("--val-min-per-class", type=int, default=1)
    parser.add_argument("--val-max-per-class", type=int, default=None)
    parser.add_argument("--test-folder", help="separate test folder (instead of --pct-test)")
    parser.add_argument("--test-min-per-class", type=int, default=1)
    parser.add_argument("--test-max-per-class", type=int, default=None)
    parser.add_argument(
        "--seed", type=int, default=0, help="seed for shuffling and subsampling (same folder, same split)"
    )
    return parser


def main(argv: Sequence[str]) -> int:
    """Parse the folders, write the list files and emit the ``result`` event.

    The result is ``{"labels": [...], "stages": {stage: {"entries": n, "distribution": {name: n}}},
    "dropped_classes": [{"name": ..., "count": n, "reason": ...}]}``.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.val_folder and args.pct_val:
        parser.error("give either --val-folder or --pct-val, not both")
    if args.test_folder and args.pct_test:
        parser.error("give either --test-folder or --pct-test, not both")
    if not 0 <= args.pct_val + args.pct_test < 100 or args.pct_val < 0 or args.pct_test < 0:
        parser.error("--pct-val and --pct-test must be >= 0 and leave some images for training")
    parsed = parse_folders(args)
    summary = write_lists(args.out_dir, parsed["labels"], parsed["stages"], random.Random(args.seed))
    for item in parsed["dropped_classes"]:
        print(f"dropped class {item['name']!r}: {item['reason']}", file=sys.stderr)
    counts = ", ".join(f"{stage} {s['entries']}" for stage, s in summary.items())
    print(f"{len(parsed['labels'])} classes; {counts}", file=sys.stderr)
    emit("result", labels=parsed["labels"], stages=summary, dropped_classes=parsed["dropped_classes"])
    return 0


if __name__ == "__main__":
    run_tool(main)
