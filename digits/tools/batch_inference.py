"""Classify a long list of images, or a dataset's database, with a trained model: a background inference job.

    python -m digits.tools.batch_inference --spec spec.json (--list list.json | --db DIR) --out results.json
        [--top 5] [--limit N]

``spec.json`` is a :class:`~digits.inference.spec.ModelSpec`, whose ``framework`` chooses the predictor (only
that framework is imported); ``list.json`` is ``{"paths": [...], "labels":
[name or null, ...]}``; ``--db`` reads a dataset's LMDB, whose records carry their labels. Writes
``results.json`` (``{"results": [{"name", "predictions"} or {"name", "error"}], "labels": [...]}``; over a
database each result also has its ``record`` index and is named by the file the record came from) when
done, and speaks the JSON-lines protocol meanwhile (``progress`` events saying what it is ``doing``, a
``result`` with the count).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


import lmdb  # noqa: E402

from digits.inference.spec import ModelSpec  # noqa: E402
from digits.jobs.store import write_json_atomic  # noqa: E402
from digits.records import SOURCES_FILE, decode_record, record_image  # noqa: E402
from digits.tools.predicting import (  # noqa: E402
    Item,
    ModelMismatch,
    classify,
    framework_modules,
    freeze_loaded,
    load_batch,
    load_predictor,
)
from digits.tools.protocol import ProgressReporter, emit, run_tool  # noqa: E402

CHUNK = 512  # images read and classified at a time: bounded memory for any list length


def list_chunks(spec: ModelSpec, paths: list[str]) -> Iterator[list[Item]]:
    for start in range(0, len(paths), CHUNK):
        yield load_batch(spec, paths[start : start + CHUNK])


def db_items(path: str, limit: int | None) -> tuple[int, Iterator[tuple[Item, int | None]]]:
    """The record count of a dataset database and its records as items with their label index.

    An item is named by the file its record came from (the database's ``sources.txt``), or by its key
    (``val_db/00000012``) in databases made before that file existed.
    """
    if not os.path.isdir(path):
        raise FileNotFoundError(f"database {path} not found: was the dataset deleted?")
    env = lmdb.open(path, readonly=True, lock=False, readahead=False, subdir=True)
    total = env.stat()["entries"]
    total = min(total, limit) if limit else total
    sources = Path(path) / SOURCES_FILE
    names = sources.read_text().splitlines()[:total] if sources.is_file() else []

    def generate():
        with env.begin() as txn:
            for number, (key, value) in enumerate(txn.cursor()):
                if number >= total:
                    break
                record = decode_record(value)
                name = names[number] if number < len(names) else f"{os.path.basename(path)}/{key.decode()}"
                yield Item(name, record_image(record)), record.label
        env.close()

    return total, generate()


def db_chunks(items: Iterator[tuple[Item, int | None]], labels: list[str], truth: list) -> Iterator[list[Item]]:
    chunk: list[Item] = []
    for item, label in items:
        chunk.append(item)
        truth.append(labels[label] if label is not None and 0 <= label < len(labels) else None)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m digits.tools.batch_inference", description=__doc__)
    parser.add_argument("--spec", required=True)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--list", help="JSON {paths, labels}")
    source.add_argument("--db", help="a dataset's LMDB folder")
    parser.add_argument("--out", required=True)
    parser.add_argument("--top", type=int, default=5)
    parser.add_argument("--limit", type=int, help="classify the first N images only")
    parser.add_argument("--inputs", action="store_true", help="keep each input array in the results (for views)")
    args = parser.parse_args(argv)
    with open(args.spec) as f:
        spec = ModelSpec.from_dict(json.load(f))
    if args.list:
        with open(args.list) as f:
            listed = json.load(f)
        paths = listed["paths"][: args.limit] if args.limit else listed["paths"]
        truth = listed.get("labels", [None] * len(listed["paths"]))[: len(paths)]
        total, chunks = len(paths), list_chunks(spec, paths)
    else:
        truth = []
        total, items = db_items(args.db, args.limit)
        chunks = db_chunks(items, spec.labels, truth)
    emit("progress", done=0, total=total, doing="Loading the model")  # the page says so while the graph builds
    _, network_error = framework_modules(spec.framework)
    try:
        predictor = load_predictor(spec)
    except (network_error, ModelMismatch) as exc:
        emit("error", message=str(exc), user_line=getattr(exc, "line", None), traceback="")
        return 1
    freeze_loaded()
    progress = ProgressReporter(total)
    results: list[dict] = []
    for chunk in chunks:
        done = len(results)
        results += classify(
            predictor, chunk, top=args.top, inputs=args.inputs,
            progress=lambda n, done=done: progress.update(done + n, doing="Classifying"),
        )  # fmt: skip
    progress.update(total, doing="Writing the results")
    if args.db:
        for number, result in enumerate(results):
            result["record"] = number  # the page shows the record itself: its file may have moved since
    write_json_atomic(Path(args.out), {"results": results, "labels": truth})
    emit("result", classified=sum("predictions" in r or "outputs" in r for r in results), total=total)
    return 0


if __name__ == "__main__":
    run_tool(main)
