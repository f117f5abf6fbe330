"""Create an LMDB image database from a list file.

    python -m digits.tools.create_db --list train.txt --db DIR --width 28 --height 28 --channels 1
        [--resize-mode squash|crop|fill|half_crop] [--encoding none|png|jpg] [--folder PREFIX]
        [--labels labels.txt] [--mean mean.npy] [--workers N] [--shuffle|--no-shuffle] [--seed S]
        [--max-pixels N] [--initial-map-size BYTES]

List lines are ``"<path> <label index>"`` (the label follows the last space). Records are
``digits.records`` examples under keys ``record_key(0..n-1)``, in (shuffled) list order, with no
gap for skipped images; ``labels.npy`` in DIR holds the label of every record and ``sources.txt`` the
file it came from (one path a line), so results over the database can name the original image.

A pool of worker processes loads, resizes and encodes chunks of images; this process only writes
them to LMDB, in large transactions. The database is built in ``DIR.partial`` and renamed to DIR
when complete, so a failed or killed creation never leaves DIR behind.
"""

from __future__ import annotations

import argparse
import errno
import functools
import io
import multiprocessing
import os
import random
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as connection_wait

import lmdb
import numpy as np
from PIL import Image

from digits.imaging import (
    DEFAULT_MAX_PIXELS,
    RESIZE_MODES,
    ImageError,
    encode_image,
    image_to_array,
    is_plain_png,
    load_image,
    resize_image,
)
from digits.records import ENCODINGS, SOURCES_FILE, ImageRecord, encode_record, record_key
from digits.tools.protocol import ProgressReporter, die_with_parent, emit, run_tool

COMMIT_RECORDS = 1000
COMMIT_BYTES = 64 << 20
MAX_CHUNK = 128  # at most 257, see _process_chunk


@dataclass(frozen=True)
class ImageSettings:
    """How every image of the database is shaped and stored."""

    width: int
    height: int
    channels: int
    resize_mode: str = "squash"
    encoding: str = "png"
    max_pixels: int = DEFAULT_MAX_PIXELS
    compute_mean: bool = True


@dataclass
class DbSummary:
    """What :func:`create_db` wrote: counts by label index, and the mean image (None when not computed)."""

    entries: int
    distribution: Counter
    skipped: Counter
    mean: np.ndarray | None
    db_bytes: int


def read_list(path: str, folder: str | None = None) -> list[tuple[str, int]]:
    """Read a list file of ``"<path> <label>"`` lines; relative paths are joined to ``folder``.

    Returns ``[(path, label index)]``; raises ValueError naming the first malformed line.
    """
    entries = []
    with open(path) as f:
        for number, line in enumerate(f, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            image_path, _, label = line.rpartition(" ")
            if not image_path or not label.lstrip("-").isdigit():
                raise ValueError(f"{path}, line {number}: expected '<path> <label index>', got {line!r}")
            if folder and not os.path.isabs(image_path):
                image_path = os.path.join(folder, image_path)
            entries.append((image_path, int(label)))
    return entries


def read_labels(path: str) -> list[str]:
    """Read ``labels.txt``: one class name per line; returns the names in label-index order."""
    with open(path) as f:
        return [line.rstrip("\r\n") for line in f if line.strip()]


def _process_chunk(
    chunk: list[tuple[str, int]], s: ImageSettings
) -> tuple[list[tuple[bytes | None, str]], np.ndarray | None]:
    # Runs in a worker. Returns, per entry in order, (record bytes, "") or (None, why it was skipped),
    # and the pixel sum of the written images: uint16 holds the sum of MAX_CHUNK (<= 257) images and
    # is the cheapest to add to and to send back.
    results = []
    pixel_sum = np.zeros((s.height, s.width, s.channels), np.uint16) if s.compute_mean else None
    rng = np.random.default_rng()
    for path, label in chunk:
        try:
            data = _read_file(path)
            img = load_image(io.BytesIO(data), s.channels, max_pixels=s.max_pixels, draft_size=(s.width, s.height))
            if s.encoding == "png" and is_plain_png(data, s.height, s.width, s.channels):
                # Already what we would write (decoded above, so it is known to be whole): re-encoding
                # would cost more than everything else together and give the same pixels.
                encoded, fmt = data, "png"
            else:
                img = resize_image(img, s.height, s.width, s.resize_mode, rng)
                encoded, fmt = encode_image(img, s.encoding)
        except ImageError as exc:
            results.append((None, exc.reason))
            continue
        except Exception as exc:  # noqa: BLE001 - one strange file must not stop the whole database
            results.append((None, f"unexpected error: {type(exc).__name__}: {exc}"))
            continue
        if pixel_sum is not None:
            pixel_sum += image_to_array(img)
        record = ImageRecord(encoded, fmt, s.height, s.width, s.channels, label)
        results.append((encode_record(record), ""))
    return results, pixel_sum


def _read_file(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise ImageError("file not found") from None
    except IsADirectoryError:
        raise ImageError("is a directory, not an image file") from None
    except OSError as exc:
        raise ImageError(f"cannot read the file: {exc.strerror or exc}") from None


def _chunks(entries: list[tuple[str, int]], size: int) -> list[list[tuple[str, int]]]:
    return [entries[i : i + size] for i in range(0, len(entries), size)]


class LmdbWriter:
    """Buffers records and commits them in large transactions, growing the map when it is full."""

    def __init__(self, path: str, map_size: int):
        # Nobody reads the database until it is renamed into place, so per-commit fsyncs buy nothing:
        # sync=False/metasync=False, and one env.sync() before the rename makes it durable.
        # No writemap: it would make data.mdb as large as the map and expose it to stray writes.
        self.env = lmdb.open(
            path, map_size=map_size, subdir=True, sync=False, metasync=False, meminit=False, readahead=False
        )
        self.count = 0
        self._batch: list[tuple[bytes, bytes]] = []
        self._batch_bytes = 0

    def put(self, value: bytes) -> None:
        self._batch.append((record_key(self.count), value))
        self.count += 1
        self._batch_bytes += len(value)
        if len(self._batch) >= COMMIT_RECORDS or self._batch_bytes >= COMMIT_BYTES:
            self.flush()

    def flush(self) -> None:
        while self._batch:
            try:
                with self.env.begin(write=True) as txn:
                    for key, value in self._batch:
                        # Keys only grow, so appending skips the B-tree search and splits pages cleanly.
                        txn.put(key, value, append=True)
            except lmdb.MapFullError:
                # The transaction was aborted; remap twice as large and write the same batch again.
                map_size = self.env.info()["map_size"] * 2
                print(f"LMDB map full, growing it to {map_size:,} bytes", file=sys.stderr)
                self.env.set_mapsize(map_size)
                continue
            self._batch, self._batch_bytes = [], 0

    def close(self) -> None:
        """Write what is buffered and make it durable; the environment stays open until ``env.close()``."""
        self.flush()
        self.env.sync(True)


def _worker_loop(chunks: list[list], process: Callable[[list], object], tasks: Connection, out: Connection):
    # A worker process: receives chunk numbers (the chunks themselves came with the fork), sends results.
    # Stdout is the parent's protocol stream: a worker must neither write to it nor keep it open.
    os.dup2(2, 1)
    die_with_parent()
    parent = os.getppid()
    try:
        while True:
            # Siblings forked later hold copies of this pipe's write end, so a killed parent does not
            # always mean EOF here: look at the parent too.
            while not tasks.poll(1.0):
                if os.getppid() != parent:
                    return
            number = tasks.recv()
            if number is None:
                return
            out.send((number, process(chunks[number])))
    except (EOFError, BrokenPipeError):
        pass  # the parent is gone: nothing left to do


def ordered_map(process: Callable[[list], object], chunks: list[list], workers: int) -> Iterator[object]:
    """``process(chunk)`` for every chunk, in ``workers`` forked processes; yields the results in chunk order.

    ``process`` and the chunks reach the workers through the fork, so neither needs to be picklable (a
    data extension's entries and methods can be anything); the results travel back pickled. A worker
    raising kills the map: return failures as values instead. Close the generator to stop the workers.
    """
    if workers <= 1:
        yield from (process(chunk) for chunk in chunks)
        return
    # Plain processes and pipes rather than multiprocessing.Pool: the Pool's helper threads cost the
    # parent about a fifth of a core at a thousand JPEGs a second, on machines that may have two.
    # fork: workers start in milliseconds, inherit the imported modules and the chunks.
    context = multiprocessing.get_context("fork")
    task_pipes, result_pipes, processes = [], [], []
    for _ in range(workers):
        task_read, task_write = context.Pipe(duplex=False)
        result_read, result_write = context.Pipe(duplex=False)
        worker = context.Process(target=_worker_loop, args=(chunks, process, task_read, result_write), daemon=True)
        worker.start()
        task_read.close()
        result_write.close()
        task_pipes.append(task_write)
        result_pipes.append(result_read)
        processes.append(worker)
    # Each worker has two chunks in hand, so it never waits for the parent; a worker far ahead of the
    # chunk the parent waits for idles instead of piling up results in memory.
    ahead_limit = 4 * workers
    sent, wanted, pending, idle = 0, 0, {}, []

    def send(worker: int) -> None:
        nonlocal sent
        if sent < len(chunks) and sent < wanted + ahead_limit:
            task_pipes[worker].send(sent)
            sent += 1
        else:
            idle.append(worker)

    try:
        for worker in (*range(workers), *range(workers)):
            send(worker)
        while wanted < len(chunks):
            while wanted not in pending:
                for pipe in connection_wait(result_pipes):
                    worker = result_pipes.index(pipe)
                    try:
                        number, result = pipe.recv()
                    except EOFError:
                        code = processes[worker].exitcode
                        raise RuntimeError(f"a worker process died unexpectedly (exit code {code})") from None
                    pending[number] = result
                    send(worker)
            yield pending.pop(wanted)
            wanted += 1
            for worker in [idle.pop() for _ in range(len(idle))]:
                send(worker)
        for pipe in task_pipes:
            pipe.send(None)
        for worker_process in processes:
            worker_process.join()
    finally:
        for worker_process in processes:
            if worker_process.is_alive():
                worker_process.terminate()
        for pipe in (*task_pipes, *result_pipes):
            pipe.close()


NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
LOW_SPACE = 2 * COMMIT_BYTES  # below this much free space, a failing write is taken for a full disk


class DiskFull(Exception):
    """A write failed for want of space: the message is "no space left in <dir>"."""


def disk_full(exc: BaseException, directory: str) -> DiskFull | None:
    """``exc`` as a :class:`DiskFull` naming ``directory`` when it is a write failing for want of space: ENOSPC
    (EDQUOT), or LMDB's errors on a disk that has (next to) no space left ("mdb_txn_commit: Input/output error"
    is what a full tmpfs gives); None for any other failure. Call it before removing what was written."""
    if isinstance(exc, DiskFull):
        return exc
    if not isinstance(exc, (OSError, lmdb.Error)):
        return None
    full = getattr(exc, "errno", None) in NO_SPACE or "No space left" in str(exc)
    if not full and (isinstance(exc, lmdb.Error) or getattr(exc, "errno", None) == errno.EIO):
        try:
            full = shutil.disk_usage(directory).free < LOW_SPACE
        except OSError:
            return None
    return DiskFull(f"no space left in {os.path.abspath(directory)}") if full else None


@contextmanager
def building(db_path: str) -> Iterator[str]:
    """A fresh ``db_path + ".partial"`` folder to build a database in.

    When the block ends normally the folder replaces ``db_path`` (removing an older database there);
    when it raises, the folder is removed: a failed or killed build never leaves ``db_path`` behind. A full
    disk raises :class:`DiskFull`.
    """
    partial = db_path.rstrip(os.sep) + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial)
    try:
        yield partial
        if os.path.exists(db_path):
            shutil.rmtree(db_path)
        os.replace(partial, db_path)
    except BaseException as exc:
        full = disk_full(exc, os.path.dirname(os.path.abspath(partial)))  # before the space is freed again
        shutil.rmtree(partial, ignore_errors=True)
        if full is not None and full is not exc:
            raise full from exc
        raise


def report_disk_full(failure: DiskFull) -> int:
    """Tell the scheduler (an ``error`` event) and the log; the tool's exit status."""
    emit("error", message=str(failure), traceback="")
    try:
        print(f"error: {failure}", file=sys.stderr)
    except OSError:
        pass  # the log is on the full disk too
    return 1


def create_db(
    entries: list[tuple[str, int]],
    db_path: str,
    settings: ImageSettings,
    *,
    workers: int = 1,
    label_names: Sequence[str] | None = None,
    initial_map_size: int | None = None,
) -> DbSummary:
    """Build the LMDB database ``db_path`` from ``(path, label)`` entries, in the given order.

    Emits ``skipped`` events for unusable images and ``progress`` events; records and ``labels.npy``
    go to ``db_path + ".partial"``, renamed to ``db_path`` (replacing an older one) only on success.
    Returns a :class:`DbSummary`; raises ValueError when no image could be written.
    """
    if initial_map_size is None:
        # Raw pixels plus record overhead, rounded up generously; the map grows if compression loses.
        raw = settings.width * settings.height * settings.channels + 512
        initial_map_size = max(64 << 20, 2 * raw * len(entries))
    # Many small chunks keep every worker busy to the end (the last chunk is the tail no one shares);
    # MAX_CHUNK images per message is already enough to make the cost of the pipe negligible.
    chunk_size = max(1, min(MAX_CHUNK, len(entries) // (max(workers, 1) * 64)))
    chunks = _chunks(entries, chunk_size)
    distribution: Counter = Counter()
    skipped: Counter = Counter()
    pixel_sum = np.zeros((settings.height, settings.width, settings.channels), np.uint64)
    labels_written: list[int] = []
    sources_written: list[str] = []
    progress = ProgressReporter(len(entries))
    done = 0
    results = ordered_map(functools.partial(_process_chunk, s=settings), chunks, workers)
    with building(db_path) as partial:
        writer = LmdbWriter(partial, initial_map_size)
        try:
            for chunk, (chunk_results, chunk_sum) in zip(chunks, results, strict=True):
                for (path, label), (record, reason) in zip(chunk, chunk_results, strict=True):
                    if record is None:
                        skipped[label] += 1
                        name = label_names[label] if label_names else label
                        emit("skipped", path=path, label=name, reason=reason)
                        print(f"skipped {path}: {reason}", file=sys.stderr)
                        continue
                    writer.put(record)
                    distribution[label] += 1
                    labels_written.append(label)
                    sources_written.append(path)
                if chunk_sum is not None:
                    pixel_sum += chunk_sum
                done += len(chunk)
                progress.update(done)
            writer.close()
        finally:
            # Stop the pool now, not whenever the generator is garbage-collected (a traceback keeps it alive).
            results.close()
            writer.env.close()
        if writer.count == 0:
            raise ValueError(f"none of the {len(entries)} images could be read, the database would be empty")
        np.save(os.path.join(partial, "labels.npy"), np.asarray(labels_written, dtype=np.int32))
        with open(os.path.join(partial, SOURCES_FILE), "w") as f:
            f.writelines(f"{source}\n" for source in sources_written)
        db_bytes = sum(e.stat().st_size for e in os.scandir(partial) if e.is_file())
    mean = (pixel_sum / writer.count).astype(np.float32) if settings.compute_mean else None
    return DbSummary(writer.count, distribution, skipped, mean, db_bytes)


def save_mean(mean: np.ndarray, npy_path: str) -> str:
    """Save the float32 HxWxC mean as ``npy_path`` and as a uint8 PNG beside it; returns the PNG path."""
    png_path = os.path.splitext(npy_path)[0] + ".png"
    pixels = np.clip(np.rint(mean), 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)
    # Write-then-rename, so a reader never sees half a file.
    with open(npy_path + ".tmp", "wb") as f:
        np.save(f, mean)
    image.save(png_path + ".tmp", format="PNG")
    os.replace(npy_path + ".tmp", npy_path)
    os.replace(png_path + ".tmp", png_path)
    return png_path


def _by_name(counts: Counter, label_names: Sequence[str] | None, all_labels: Iterable[int] = ()) -> dict:
    labels = sorted(set(counts) | set(all_labels))
    return {(label_names[label] if label_names else str(label)): counts[label] for label in labels}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m digits.tools.create_db", description=__doc__.splitlines()[0])
    parser.add_argument("--list", required=True, help="list file of '<path> <label index>' lines")
    parser.add_argument("--db", required=True, help="database folder to create")
    parser.add_argument("--folder", help="prefix for the relative paths of the list")
    parser.add_argument("--width", type=int, required=True)
    parser.add_argument("--height", type=int, required=True)
    parser.add_argument("--channels", type=int, choices=(1, 3), default=3)
    parser.add_argument("--resize-mode", choices=RESIZE_MODES, default="squash")
    parser.add_argument("--encoding", choices=ENCODINGS, default="png")
    parser.add_argument("--labels", help="labels.txt, to report counts by class name")
    parser.add_argument("--mean", help="where to save the mean image (.npy; a .png is written beside it)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="image processes (1: none)")
    parser.add_argument("--shuffle", action=argparse.BooleanOptionalAction, default=True, help="shuffle the list")
    parser.add_argument("--seed", type=int, default=0, help="seed for shuffling (same list, same order)")
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, help="refuse larger images")
    parser.add_argument("--initial-map-size", type=int, default=None, help="initial LMDB map size in bytes")
    return parser


def main(argv: Sequence[str]) -> int:
    """Create the database and emit the ``result`` event.

    The result is ``{"entries": n, "distribution": {name: n}, "skipped": {name: n},
    "image_dimensions": [h, w, c], "encoding": ..., "db_bytes": n}``.
    """
    args = build_parser().parse_args(argv)
    label_names = read_labels(args.labels) if args.labels else None
    entries = read_list(args.list, args.folder)
    if label_names is not None:
        bad = next(((p, label) for p, label in entries if not 0 <= label < len(label_names)), None)
        if bad:
            raise ValueError(f"{bad[0]} has label {bad[1]}, but {args.labels} names only {len(label_names)} classes")
    if args.shuffle:
        random.Random(args.seed).shuffle(entries)
    settings = ImageSettings(
        width=args.width,
        height=args.height,
        channels=args.channels,
        resize_mode=args.resize_mode,
        encoding=args.encoding,
        max_pixels=args.max_pixels,
        compute_mean=bool(args.mean),
    )
    workers = max(1, min(args.workers, len(entries)))
    print(
        f"creating {args.db} from {len(entries)} images of {args.list}: {args.height}x{args.width}x{args.channels}, "
        f"{args.resize_mode}, encoding {args.encoding}, {workers} workers",
        file=sys.stderr,
    )
    start = time.perf_counter()
    try:
        summary = create_db(
            entries, args.db, settings, workers=workers, label_names=label_names, initial_map_size=args.initial_map_size
        )
        if summary.mean is not None:
            save_mean(summary.mean, args.mean)
    except (OSError, lmdb.Error, DiskFull) as exc:
        full = disk_full(exc, os.path.dirname(os.path.abspath(args.db)))
        if full is None:
            raise
        return report_disk_full(full)
    seconds = time.perf_counter() - start
    print(
        f"wrote {summary.entries} images, skipped {sum(summary.skipped.values())}, {summary.db_bytes >> 20} MiB "
        f"in {seconds:.1f} s ({len(entries) / seconds:.0f} images/s)",
        file=sys.stderr,
    )
    emit(
        "result",
        entries=summary.entries,
        distribution=_by_name(summary.distribution, label_names, range(len(label_names or ()))),
        skipped=_by_name(summary.skipped, label_names),
        image_dimensions=[args.height, args.width, args.channels],
        encoding=args.encoding,
        db_bytes=summary.db_bytes,
    )
    return 0


if __name__ == "__main__":
    run_tool(main)
