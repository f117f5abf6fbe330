"""What both frameworks' export tools share (no framework imported): reading the model's spec, the facts of
``info.json`` that do not depend on the format, the files written beside the model, the check of the exported
model against the trained one, and the command line."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path

from digits.inference.spec import spec_from_info
from digits.tools.protocol import emit
from digits.tools.user_errors import NetworkError

ARCHIVE_FACTS = ("job_name", "job_id", "dataset_name")


class ExportFailed(Exception):
    """The export cannot be made or does not match the trained model; the message says why."""


def read_spec(spec_path: Path, out: Path):
    """The ModelSpec at ``spec_path`` (an archive's ``info.json`` too) with the job's facts it names; ExportFailed
    when ``out`` exists already."""
    if out.exists():
        raise ExportFailed(f"{out} exists already; give a new directory")
    info = json.loads(spec_path.read_text())
    spec = spec_from_info(info, spec_path.resolve().parent)
    spec.extra = {**spec.extra, **{k: info[k] for k in ARCHIVE_FACTS if k in info}}
    return spec


def check_difference(difference: float | None, tolerance: float) -> None:
    """ExportFailed when the exported model's outputs differ from the trained one's by more than ``tolerance``."""
    if difference is not None and difference > tolerance:
        raise ExportFailed(f"the exported model differs from the trained one by {difference:g}")


def write_description(out: Path, spec, own: dict) -> dict:
    """Write ``labels.txt`` and ``info.json`` (``own``, the format's facts, then those of every export);
    returns what ``info.json`` holds."""
    height, width, channels = spec.image_shape
    described = {
        **own,
        "labels": spec.labels,
        "labels_file": "labels.txt",
        "resize_mode": spec.resize_mode,
        "preprocessing": "inside the model: mean subtraction "
        f"({spec.subtract_mean}) and center crop ({spec.crop_size or 'none'}); resize to {height}x{width} "
        f"with {channels} channel(s) before feeding",
        "snapshot_epoch": spec.snapshot_epoch,
        **{k: v for k, v in spec.extra.items() if k in ARCHIVE_FACTS},
    }
    (out / "labels.txt").write_text("".join(f"{label}\n" for label in spec.labels))
    (out / "info.json").write_text(json.dumps(described, indent=1) + "\n")
    return described


def export_main(
    argv: Sequence[str],
    prog: str,
    description: str,
    default_format: str,
    export: Callable[[Path, Path, bool], dict],
    failures: tuple[type[Exception], ...] = (ExportFailed,),
) -> int:
    """An export tool's command line (``--spec``, ``--out``, ``--onnx``): runs ``export`` and emits its result, or
    an ``error`` for the user's network or one of ``failures``. Returns the exit status."""
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--spec", required=True, type=Path, help="a ModelSpec (or an archive's info.json)")
    parser.add_argument("--out", required=True, type=Path, help="the directory to create")
    parser.add_argument("--onnx", action="store_true", help=f"write model.onnx instead of {default_format}")
    args = parser.parse_args(argv)
    try:
        result = export(args.spec, args.out, args.onnx)
    except NetworkError as exc:
        emit("error", message=str(exc), user_line=exc.line, traceback="")
        return 1
    except failures as exc:
        emit("error", message=str(exc), traceback="")
        return 1
    emit("result", export=result)
    return 0
