"""Create a dataset's LMDB databases with a data extension (a plugin's ``DataIngestion``), or from prebuilt ones.

    python -m digits.tools.create_generic_db --extension image-gradients --form extension_form.json
        [--out DIR] [--stages train,val,test] [--feature-encoding png|jpg|none] [--label-encoding none|png]
        [--batch-size 32] [--workers N] [--force-same-shape|--no-force-same-shape]
        [--inference --userdata extension_userdata.json]
    python -m digits.tools.create_generic_db --prebuilt train=/path/db [--prebuilt val=/path/db]
        [--prebuilt-labels train=/path/labels_db] [--mean-file mean.npy|mean.png] [--out DIR]

The extension is created once, from the form's fields (a JSON object), ``itemize_entries(stage)`` lists
each stage's entries, and ``encode_entry`` runs in worker processes forked from this one (the mechanism of
``create_db``: workers encode, this process writes). Every stage with entries becomes ``DIR/<stage>_db``,
records as :mod:`digits.records` describes, keys ``record_key(0..n-1)`` in the order of the entries.
``DIR/mean.npy`` (and ``mean.png`` for 8-bit images) is the mean training feature (HWC float32), and
``DIR/extension_userdata.json`` what ``get_user_data()`` returned.

An entry the extension rejects with ``SkipEntry`` is reported as skipped. Anything else it raises, or an
array of the wrong shape or type, stops the tool with an ``error`` event carrying the extension's
traceback, and removes every database this run wrote: a dataset is never left half-written.
With ``--inference`` the extension is created with ``is_inference_db=True`` from the dataset's user data
updated with the (inference) form, and only the ``test`` stage is built.

With ``--prebuilt`` (DIGITS' "Other" datasets) existing LMDBs of :mod:`digits.records` examples are
checked and copied (compacted) to ``DIR/<stage>_db``; a separate labels database (records whose image is
the label of the same key) goes to ``DIR/<stage>_labels_db``. The mean is the given file or computed.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import lmdb
import numpy as np

from digits.extensions.data import SkipEntry, create_extension, discover_data_extensions
from digits.imaging import ImageError, check_pixels, open_image
from digits.records import (
    ImageRecord,
    LabelArray,
    decode_record,
    encode_array,
    encode_record,
    record_image,
    record_key,
)
from digits.tools.create_db import DiskFull, LmdbWriter, building, disk_full, ordered_map, report_disk_full, save_mean
from digits.tools.protocol import ProgressReporter, emit, run_tool
from digits.utils.constants import STAGES, TEST_DB, TRAIN_DB

USERDATA_FILE = "extension_userdata.json"
ENTRY_TEXT = 200  # characters of an entry's repr in messages
RAW_DTYPES = ("uint8", "int8", "uint16", "int16", "int32", "int64", "float16", "float32")


class ExtensionFailure(Exception):
    """The extension raised (or returned something unusable); ``traceback`` is where, in its code."""

    def __init__(self, message: str, traceback_text: str = ""):
        super().__init__(message)
        self.traceback = traceback_text


@dataclass(frozen=True)
class Encoding:
    feature: str = "png"  # png, jpg or none
    label: str = "none"  # none or png


@dataclass
class Sample:
    """One encoded record and what it must agree on with every other record of the dataset."""

    record: bytes
    shape: tuple  # (feature HWC shape, dtype, format, label kind, label shape, label dtype)
    feature: np.ndarray  # HWC, for the mean


# -- arrays from the extension -> a record ---------------------------------------------------------------
def _numeric(array: np.ndarray, what: str) -> np.ndarray:
    """``array`` in a dtype the records store raw; raises ValueError for anything that is not numbers."""
    if array.dtype == np.bool_:
        return array.astype(np.uint8)
    if array.dtype.kind not in "iuf":
        raise ValueError(f"{what} must be an array of numbers, got dtype {array.dtype}")
    if array.dtype == np.float64:
        return array.astype(np.float32)
    if array.dtype in (np.int64, np.uint32, np.uint64):
        info = np.iinfo(np.int32)
        if array.size and (array.min() < info.min or array.max() > info.max):
            if array.dtype == np.uint64:
                raise ValueError(f"{what} has values beyond int64")
            return array.astype(np.int64)
        return array.astype(np.int32)
    if array.dtype.name not in RAW_DTYPES:
        raise ValueError(f"{what} has dtype {array.dtype}, which cannot be stored")
    return array


def _hwc(array: np.ndarray, what: str) -> np.ndarray:
    """CHW (or HxW) from the extension -> HWC as records store it; ImageError past the pixel limit."""
    if array.ndim == 2:
        array = array[:, :, np.newaxis]
    elif array.ndim == 3:
        array = np.transpose(array, (1, 2, 0))
    else:
        raise ValueError(f"{what} must be a 3-D array CHW (or 2-D HxW), got shape {tuple(array.shape)}")
    check_pixels(array.shape[0], array.shape[1], what)
    return array


def encode_sample(feature, label, encoding: Encoding) -> Sample:
    """Check and convert one (feature, label) pair of an extension into a record."""
    if feature is None:
        raise ValueError("the feature is None")
    feature = _hwc(_numeric(np.asarray(feature), "the feature"), "the feature")
    if 0 in feature.shape:
        raise ValueError(f"the feature is empty (shape {tuple(feature.shape)} HWC)")
    encoded, fmt = encode_array(feature, encoding.feature)
    record = ImageRecord(encoded, fmt, *feature.shape, dtype=feature.dtype.name)
    label_kind, label_shape, label_dtype = "none", (), ""
    if label is not None:
        array = _numeric(np.asarray(label), "the label")
        squeezed = np.squeeze(array)
        if squeezed.ndim == 0 and array.dtype.kind in "iu":
            record.label, label_kind = int(squeezed), "class"
        elif squeezed.ndim <= 1:
            values = np.atleast_1d(squeezed).astype(np.float32)
            record.label_values, label_kind, label_shape = values.tolist(), "values", (len(values),)
            label_dtype = "float32"
        else:
            array = _hwc(array, "the label")
            label_bytes, label_format = encode_array(array, encoding.label)
            record.label_array = LabelArray(label_bytes, label_format, array.shape, array.dtype.name)
            label_kind, label_shape, label_dtype = "array", array.shape, array.dtype.name
    shape = (feature.shape, feature.dtype.name, fmt, label_kind, label_shape, label_dtype)
    return Sample(encode_record(record), shape, feature)


def _pairs(value) -> list:
    # encode_entry returns (feature, label) or a list of such pairs (DIGITS' interface).
    if isinstance(value, tuple) and len(value) == 2:
        return [value]
    if isinstance(value, list) and all(isinstance(v, tuple | list) and len(v) == 2 for v in value):
        return value
    raise ValueError(
        f"encode_entry must return (feature, label) or a list of such pairs, not {type(value).__name__}"
        + (f" of {len(value)} items" if isinstance(value, tuple | list) else "")
    )


def _entry_text(entry: Any) -> str:
    if isinstance(entry, tuple | list) and entry and isinstance(entry[0], str):
        entry = entry[0]  # (path, other path...): the first path names the entry well enough
    text = entry if isinstance(entry, str) else repr(entry)
    return text if len(text) <= ENTRY_TEXT else text[: ENTRY_TEXT - 3] + "..."


@dataclass
class ChunkResult:
    """What a worker sends back for a chunk of entries."""

    samples: list[list[tuple[bytes, tuple]]] = field(default_factory=list)  # per entry (None when skipped)
    skipped: dict[int, str] = field(default_factory=dict)  # entry position in chunk -> reason
    feature_sum: np.ndarray | None = None  # float64 sum of the features of the chunk's first shape
    sum_shape: tuple | None = None
    summed: int = 0
    failure: tuple[int, str, str] | None = None  # (entry position, message, traceback)


def encode_chunk(extension, encoding: Encoding, chunk: list) -> ChunkResult:
    """Runs in a worker: ``encode_entry`` on every entry of ``chunk``, stopping at the first failure."""
    result = ChunkResult()
    for position, entry in enumerate(chunk):
        try:
            pairs = _pairs(extension.encode_entry(entry))
        except SkipEntry as skip:
            result.skipped[position] = skip.reason
            result.samples.append([])
            continue
        except Exception as exc:  # noqa: BLE001 - the extension's failure goes back to the job, with its traceback
            result.failure = (position, f"encode_entry raised {type(exc).__name__}: {exc}", traceback.format_exc())
            return result
        samples = []
        for feature, label in pairs:
            try:
                sample = encode_sample(feature, label, encoding)
            except ValueError as exc:
                result.failure = (position, f"encode_entry returned an unusable sample: {exc}", "")
                return result
            if result.sum_shape is None:
                result.sum_shape = sample.feature.shape
                result.feature_sum = np.zeros(sample.feature.shape, np.float64)
            if sample.feature.shape == result.sum_shape:
                result.feature_sum += sample.feature
                result.summed += 1
            samples.append((sample.record, sample.shape))
        result.samples.append(samples)
    return result


# -- one stage -------------------------------------------------------------------------------------------
@dataclass
class StageSummary:
    entries: int  # records written
    skipped: int
    shape: tuple | None
    feature_sum: np.ndarray | None
    summed: int
    db_bytes: int


def _describe_shape(shape: tuple) -> str:
    feature_shape, dtype, fmt, label_kind, label_shape, label_dtype = shape
    h, w, c = feature_shape
    text = f"feature {c}x{h}x{w} (CHW) {dtype}"
    if label_kind == "array":
        text += f", label array {label_shape[2]}x{label_shape[0]}x{label_shape[1]} (CHW) {label_dtype}"
    elif label_kind == "values":
        text += f", label of {label_shape[0]} value(s)"
    elif label_kind == "class":
        text += ", integer label"
    else:
        text += ", no label"
    return text


def build_stage(
    extension,
    stage: str,
    entries: list,
    db_path: str,
    encoding: Encoding,
    *,
    batch_size: int,
    workers: int,
    force_same_shape: bool,
    expected_shape: tuple | None,
    progress: ProgressReporter,
    done_before: int,
) -> StageSummary:
    """Encode ``entries`` and write them to ``db_path``; raises ExtensionFailure when the extension fails."""
    chunks = [entries[i : i + batch_size] for i in range(0, len(entries), batch_size)]
    results = ordered_map(functools.partial(encode_chunk, extension, encoding), chunks, workers)
    shape, feature_sum, summed, skipped, done = expected_shape, None, 0, 0, 0
    with building(db_path) as partial:
        writer = LmdbWriter(partial, max(64 << 20, 4 * len(entries) * 4096))
        try:
            for chunk, result in zip(chunks, results, strict=True):
                for position, reason in result.skipped.items():
                    skipped += 1
                    path = _entry_text(chunk[position])
                    emit("skipped", stage=stage, path=path, label=None, reason=reason)
                    print(f"skipped {path}: {reason}", file=sys.stderr)
                for position, samples in enumerate(result.samples):
                    for record, sample_shape in samples:
                        if shape is None:
                            shape = sample_shape
                            print(f"{stage}: {_describe_shape(shape)}", file=sys.stderr)
                        elif force_same_shape and sample_shape != shape:
                            raise ExtensionFailure(
                                f"entry {done + position} of {stage} ({_entry_text(chunk[position])}) has "
                                f"{_describe_shape(sample_shape)}, but the entries before it have "
                                f"{_describe_shape(shape)}: every sample of a dataset must have the same shape"
                            )
                        writer.put(record)
                if result.failure:
                    position, message, trace = result.failure
                    raise ExtensionFailure(
                        f"{message} (entry {done + position} of {stage}: {_entry_text(chunk[position])})", trace
                    )
                if result.feature_sum is not None and shape is not None and result.sum_shape == shape[0]:
                    feature_sum = result.feature_sum if feature_sum is None else feature_sum + result.feature_sum
                    summed += result.summed
                done += len(chunk)
                progress.update(done_before + done, stage=stage)
            writer.close()
        finally:
            results.close()
            writer.env.close()
        if writer.count == 0:
            raise ExtensionFailure(
                f"no sample of the {len(entries)} entries of {stage} could be used, the database would be empty"
            )
        db_bytes = sum(e.stat().st_size for e in os.scandir(partial) if e.is_file())
    return StageSummary(writer.count, skipped, shape, feature_sum, summed, db_bytes)


# -- the whole dataset -------------------------------------------------------------------------------------
def json_safe(value: Any) -> Any:
    """``value`` with numpy values, tuples and sets turned into JSON types (anything else into its str)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def write_json(path: str, data: Any) -> None:
    with open(path + ".tmp", "w") as f:
        json.dump(json_safe(data), f, indent=1, sort_keys=True)
    os.replace(path + ".tmp", path)


def _call(doing: str, function, *args):
    try:
        return function(*args)
    except Exception as exc:  # noqa: BLE001 - reported with the extension's own traceback
        raise ExtensionFailure(f"{doing} raised {type(exc).__name__}: {exc}", traceback.format_exc()) from exc


def _find_extension(extension_id: str) -> type:
    catalog = discover_data_extensions()
    extension = catalog.get(extension_id)
    if extension is not None:
        return extension.cls
    broken = [b for b in catalog.broken if b.name == extension_id or extension_id in b.reason]
    if broken:
        raise ExtensionFailure(f"the data extension {extension_id} is broken: {broken[0].reason}", broken[0].traceback)
    installed = ", ".join(sorted(catalog.extensions)) or "none"
    raise ExtensionFailure(
        f"no data extension {extension_id!r} is installed (was its plugin uninstalled?); installed: {installed}"
    )


def label_description(shape: tuple | None) -> dict[str, Any]:
    """How a dataset's records carry features and labels, for its job (``feature_dims`` is [H, W, C])."""
    if shape is None:
        return {}
    feature_shape, dtype, fmt, label_kind, label_shape, label_dtype = shape
    return {
        "feature_dims": list(feature_shape),
        "feature_dtype": dtype,
        "feature_encoding": fmt,
        "label_kind": label_kind,
        "label_dims": list(label_shape),
        "label_dtype": label_dtype or None,
    }


# -- prebuilt databases ("Other" datasets) ---------------------------------------------------------------
def record_shape(record: ImageRecord) -> tuple:
    """The shape tuple (as :class:`Sample` has it) of a decoded record."""
    if record.label_array is not None:
        label = ("array", tuple(record.label_array.shape), record.label_array.dtype)
    elif record.label_values is not None:
        label = ("values", (len(record.label_values),), "float32")
    elif record.label is not None:
        label = ("class", (), "")
    else:
        label = ("none", (), "")
    return ((record.height, record.width, record.channels), record.dtype, record.format, *label)


def inspect_db(path: str) -> tuple[int, tuple]:
    """``(entries, shape of the first record)`` of an LMDB of records; raises ValueError saying what is wrong."""
    if not os.path.isdir(path) or not os.path.isfile(os.path.join(path, "data.mdb")):
        raise ValueError(f"{path} is not an LMDB folder (a folder holding data.mdb)")
    try:
        env = lmdb.open(path, readonly=True, lock=False, readahead=False, subdir=True)
    except lmdb.Error as exc:
        raise ValueError(f"{path} cannot be opened as an LMDB: {exc}") from None
    try:
        entries = env.stat()["entries"]
        if not entries:
            raise ValueError(f"{path} is an empty database")
        with env.begin() as txn:
            value = txn.get(record_key(0))
            if value is None:
                raise ValueError(f"{path} has no record under the key {record_key(0).decode()}: keys must be "
                                 "record_key(0..n-1) (zero-padded 8-digit indices)")  # fmt: skip
        try:
            record = decode_record(value)
            record_image(record)
        except ImageError as exc:
            raise ValueError(f"the records of {path}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - any failure means: not our record format
            raise ValueError(f"the records of {path} are not DIGITS records (tf.train.Example with "
                             f"image/encoded...): {type(exc).__name__}: {exc}") from None  # fmt: skip
        return entries, record_shape(record)
    finally:
        env.close()


def _stage_paths(values: list[str], option: str) -> dict[str, str]:
    paths = {}
    for value in values or []:
        stage, _, path = value.partition("=")
        if stage not in STAGES or not path:
            raise ValueError(f"{option} takes STAGE=PATH with a stage of {', '.join(STAGES)}, not {value!r}")
        paths[stage] = path
    return paths


def _load_mean(path: str) -> np.ndarray:
    if path.endswith(".npy"):
        mean = np.load(path)
    else:
        with open_image(path) as image:
            mean = np.asarray(image, dtype=np.float32)
    mean = np.asarray(mean, dtype=np.float32)
    return mean[:, :, np.newaxis] if mean.ndim == 2 else mean


def import_prebuilt(args: argparse.Namespace) -> dict[str, Any]:
    """Check and copy prebuilt databases; returns the ``result`` event's fields."""
    sources = _stage_paths(args.prebuilt, "--prebuilt")
    label_sources = _stage_paths(args.prebuilt_labels, "--prebuilt-labels")
    if TRAIN_DB not in sources:
        raise ValueError("--prebuilt needs a train database")
    shape, label_shape, entries, written = None, None, {}, []
    try:
        for stage, source in sources.items():
            count, stage_shape = inspect_db(source)
            if shape is not None and stage_shape[:3] != shape[:3]:
                raise ValueError(f"the {stage} database has {_describe_shape(stage_shape)}, the train database "
                                 f"{_describe_shape(shape)}")  # fmt: skip
            shape = shape or stage_shape
            targets = [(source, os.path.join(args.out, f"{stage}_db"))]
            if stage in label_sources:
                label_count, stage_label = inspect_db(label_sources[stage])
                if label_count != count:
                    raise ValueError(f"the {stage} labels database has {label_count} records, its images {count}")
                label_shape = label_shape or stage_label
                targets.append((label_sources[stage], os.path.join(args.out, f"{stage}_labels_db")))
            for source_path, db_path in targets:
                with building(db_path) as partial:
                    env = lmdb.open(source_path, readonly=True, lock=False, readahead=False, subdir=True)
                    try:
                        env.copy(partial, compact=True)
                    finally:
                        env.close()
                written.append(db_path)
            entries[stage] = count
            print(f"copied {source} ({count} records) to {stage}_db", file=sys.stderr)
        mean_path = os.path.join(args.out, "mean.npy")
        if args.mean_file:
            mean = _load_mean(args.mean_file)
        else:
            mean = _mean_of(os.path.join(args.out, f"{TRAIN_DB}_db"), entries[TRAIN_DB])
        np.save(mean_path, mean)
        if shape[1] == "uint8" and mean.ndim == 3 and mean.shape[2] in (1, 3, 4):
            save_mean(mean, mean_path)
    except BaseException:
        for db_path in written:
            shutil.rmtree(db_path, ignore_errors=True)
        raise
    description = label_description(shape)
    if label_shape is not None:
        # A separate labels database: the label is its record's image.
        description.update(label_kind="array", label_dims=list(label_shape[0]), label_dtype=label_shape[1],
                           labels_db=True)  # fmt: skip
    return {"entries": entries, "skipped": {}, "prebuilt": sources, **description}


def _mean_of(db_path: str, entries: int) -> np.ndarray:
    progress = ProgressReporter(entries)
    env = lmdb.open(db_path, readonly=True, lock=False, readahead=False, subdir=True)
    total, count = None, 0
    try:
        with env.begin() as txn:
            for _, value in txn.cursor():
                image = record_image(decode_record(value)).astype(np.float64)
                total = image if total is None else total + image
                count += 1
                progress.update(count)
    finally:
        env.close()
    return (total / count).astype(np.float32)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m digits.tools.create_generic_db", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--extension", help="the data extension's id")
    parser.add_argument("--form", help="JSON file of the extension form's fields")
    parser.add_argument("--out", default=".", help="the dataset's folder (default: the current one)")
    parser.add_argument("--stages", default=",".join(STAGES), help="comma-separated stages to build")
    parser.add_argument("--feature-encoding", choices=("png", "jpg", "none"), default="png")
    parser.add_argument("--label-encoding", choices=("png", "none"), default="none")
    parser.add_argument("--batch-size", type=int, default=32, help="entries per message to a worker")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="encoding processes (1: none)")
    parser.add_argument("--force-same-shape", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--inference", action="store_true", help="build the test stage of an inference database")
    parser.add_argument("--userdata", help="the dataset's extension_userdata.json (with --inference)")
    parser.add_argument("--prebuilt", action="append", metavar="STAGE=PATH", help="copy a prebuilt database")
    parser.add_argument("--prebuilt-labels", action="append", metavar="STAGE=PATH", help="its labels database")
    parser.add_argument("--mean-file", help="mean image of the prebuilt databases (.npy or an image)")
    return parser


def create(args: argparse.Namespace) -> dict[str, Any]:
    """Build the databases; returns the ``result`` event's fields. Raises ExtensionFailure."""
    with open(args.form) as f:
        fields = json.load(f)
    if args.inference and args.userdata:
        with open(args.userdata) as f:
            fields = {**json.load(f), **fields}
    stages = [TEST_DB] if args.inference else [s for s in args.stages.split(",") if s]
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ValueError(f"unknown stage(s) {', '.join(unknown)}; stages are {', '.join(STAGES)}")
    cls = _find_extension(args.extension)
    extension = _call("__init__", lambda: create_extension(cls, fields, args.inference))
    entries = {stage: list(_call(f"itemize_entries({stage!r})", extension.itemize_entries, stage)) for stage in stages}
    total = sum(len(e) for e in entries.values())
    print(f"{args.extension}: " + ", ".join(f"{len(e)} {s} entries" for s, e in entries.items()), file=sys.stderr)
    if not entries.get(TEST_DB if args.inference else TRAIN_DB):
        stage = TEST_DB if args.inference else TRAIN_DB
        raise ExtensionFailure(f"itemize_entries({stage!r}) returned no entries: there is nothing to train on")
    encoding = Encoding(args.feature_encoding, args.label_encoding)
    progress = ProgressReporter(total)
    progress.update(0)
    summaries: dict[str, StageSummary] = {}
    written: list[str] = []
    shape = None
    try:
        for stage, stage_entries in entries.items():
            if not stage_entries:
                continue
            db_path = os.path.join(args.out, f"{stage}_db")
            summaries[stage] = build_stage(
                extension, stage, stage_entries, db_path, encoding,
                batch_size=max(1, args.batch_size), workers=max(1, min(args.workers, len(stage_entries))),
                force_same_shape=args.force_same_shape, expected_shape=shape if args.force_same_shape else None,
                progress=progress, done_before=sum(len(entries[s]) for s in summaries),
            )  # fmt: skip
            written.append(db_path)
            shape = shape or summaries[stage].shape
    except BaseException:
        # One dataset, one outcome: the stages already built go too.
        for db_path in written:
            shutil.rmtree(db_path, ignore_errors=True)
        raise
    userdata = _call("get_user_data", extension.get_user_data)
    write_json(os.path.join(args.out, USERDATA_FILE), userdata)
    first = summaries.get(TRAIN_DB) or next(iter(summaries.values()))
    if first.feature_sum is not None and first.summed and not args.inference:
        mean = (first.feature_sum / first.summed).astype(np.float32)
        np.save(os.path.join(args.out, "mean.npy"), mean)
        if first.shape and first.shape[1] == "uint8" and mean.shape[2] in (1, 3, 4):
            save_mean(mean, os.path.join(args.out, "mean.npy"))
    return {
        "extension_id": args.extension,
        "entries": {stage: s.entries for stage, s in summaries.items()},
        "skipped": {stage: s.skipped for stage, s in summaries.items()},
        "db_bytes": sum(s.db_bytes for s in summaries.values()),
        **label_description(shape),
    }


def main(argv: Sequence[str]) -> int:
    """Create the databases and emit the ``result`` event.

    The result is ``{"extension_id", "entries": {stage: n}, "skipped": {stage: n}, "db_bytes",
    "feature_dims": [H, W, C], "feature_dtype", "feature_encoding", "label_kind": "class"|"values"|"array"|"none",
    "label_dims", "label_dtype"}``.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.prebuilt and not (args.extension and args.form):
        parser.error("give --extension and --form, or --prebuilt")
    start = time.perf_counter()
    try:
        result = import_prebuilt(args) if args.prebuilt else create(args)
    except ExtensionFailure as failure:
        emit("error", message=str(failure), traceback=failure.traceback)
        print(f"error: {failure}\n{failure.traceback}", file=sys.stderr)
        return 1
    except (OSError, lmdb.Error, DiskFull) as exc:
        full = disk_full(exc, args.out or ".")
        if full is None:
            raise
        return report_disk_full(full)
    print(f"wrote {result['entries']} in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    emit("result", **result)
    return 0


if __name__ == "__main__":
    run_tool(main)
