"""A task's growing lists (metrics, skipped entries): append-only JSON-lines files beside ``job.json``.

``job.json`` keeps only their lengths (``task.data["lists"]``): it stays small whatever a job does. A list
lives in ``<task id>.<file name>.jsonl``; jobs saved before the files existed keep their lists inside
``task.data`` and are read from there (and moved into the file when the task appends to it again).
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import IO, Any

# The lists kept in files: task.data's name of the list -> the file's middle name.
LIST_FILES = {"metrics": "metrics", "skipped_images": "skipped"}
COUNTS_KEY = "lists"


def list_path(directory: str | Path, task_id: str, name: str) -> Path:
    return Path(directory) / f"{task_id}.{LIST_FILES[name]}.jsonl"


def count(data: dict[str, Any], name: str) -> int:
    """How many entries a task's list ``name`` has (``data`` is the task's data, old format or new)."""
    counts = data.get(COUNTS_KEY) or {}
    if name in counts:
        return int(counts[name])
    return len(data.get(name) or [])


class ListWriter:
    """Appends to one task's list files; one writer per running task (the thread reading its tool)."""

    def __init__(self, directory: str | Path, task_id: str):
        self.directory = Path(directory)
        self.task_id = task_id
        self._files: dict[str, IO[str]] = {}

    def append(self, name: str, entry: dict, old: list | None = None) -> None:
        """Append ``entry`` to list ``name``; ``old`` is the list the task's data held (old format), written
        first when the file does not exist yet. Raises OSError (a full disk) with nothing half-written
        that a reader would take for an entry."""
        f = self._files.get(name)
        if f is None:
            f = self._files[name] = self._open(name, old)
        f.write(json.dumps(entry, separators=(",", ":")) + "\n")
        f.flush()

    def _open(self, name: str, old: list | None) -> IO[str]:
        path = list_path(self.directory, self.task_id, name)
        f = open(path, "a+b")  # noqa: SIM115 - kept open while the task runs
        try:
            end = f.seek(0, os.SEEK_END)
            if end:
                f.seek(end - 1)
                if f.read(1) != b"\n":
                    f.write(b"\n")  # a line cut short by a crash or a full disk stays a line of its own
            elif old:
                f.write(b"".join(json.dumps(e, separators=(",", ":")).encode() + b"\n" for e in old))
            f.flush()
        except BaseException:
            f.close()
            raise
        f.close()
        return open(path, "a", encoding="utf-8")  # noqa: SIM115

    def close(self) -> None:
        for f in self._files.values():
            try:
                f.close()
            except OSError:
                pass
        self._files.clear()


def _parse(line: bytes) -> dict | None:
    try:
        entry = json.loads(line)
    except ValueError:
        return None  # a line cut short (a crash, a full disk): not an entry
    return entry if isinstance(entry, dict) else None


def read_page(directory: str | Path, task_id: str, data: dict[str, Any], name: str, offset: int = 0,
              limit: int | None = None) -> list[dict]:  # fmt: skip
    """Entries ``offset`` .. ``offset + limit`` of a task's list, from its file (or its data, old format)."""
    path = list_path(directory, task_id, name)
    stop = None if limit is None else offset + limit
    try:
        f = open(path, "rb")  # noqa: SIM115
    except FileNotFoundError:
        return list((data.get(name) or [])[offset:stop])
    entries: list[dict] = []
    index = 0
    with f:
        for line in f:
            if stop is not None and index >= stop:
                break
            if not line.endswith(b"\n"):
                break  # being written
            entry = _parse(line)
            if entry is None:
                continue
            if index >= offset:
                entries.append(entry)
            index += 1
    return entries


class _Cache:
    """Whole lists read before, by file: a later read parses only what was appended since."""

    def __init__(self, size: int = 64):
        self.size = size
        self._items: OrderedDict[Path, tuple[int, int, list[dict]]] = OrderedDict()
        self._lock = threading.Lock()

    def read(self, path: Path) -> list[dict] | None:
        try:
            f = open(path, "rb")  # noqa: SIM115
        except FileNotFoundError:
            return None
        with f:
            inode = os.fstat(f.fileno()).st_ino
            with self._lock:
                cached = self._items.get(path)
            start, entries = 0, []
            if cached and cached[0] == inode and cached[1] <= os.fstat(f.fileno()).st_size:
                start, entries = cached[1], list(cached[2])
            f.seek(start)
            chunk = f.read()
        end = chunk.rfind(b"\n") + 1  # complete lines only: the rest is being written
        for line in chunk[:end].splitlines():
            entry = _parse(line)
            if entry is not None:
                entries.append(entry)
        with self._lock:
            self._items[path] = (inode, start + end, entries)
            self._items.move_to_end(path)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return list(entries)


_cache = _Cache()


def read_all(directory: str | Path, task_id: str, data: dict[str, Any], name: str) -> list[dict]:
    """Every entry of a task's list (for lists that stay modest, as metrics do)."""
    entries = _cache.read(list_path(directory, task_id, name))
    return list(data.get(name) or []) if entries is None else entries


PAGE_SIZE = 100  # entries of a list a page shows at once


def page_across(directory: str | Path, tasks: list[tuple[str, dict[str, Any]]], name: str, page: int = 1,
                size: int = PAGE_SIZE) -> tuple[int, list[tuple[str, dict]]]:  # fmt: skip
    """Page ``page`` (from 1) of the lists ``name`` of ``tasks`` (``(task id, data)``) one after the other.

    Returns the total count and the page's ``(task id, entry)`` pairs.
    """
    counts = [count(data, name) for _, data in tasks]
    offset, entries = (max(1, page) - 1) * size, []
    for (task_id, data), n in zip(tasks, counts, strict=True):
        if offset >= n:
            offset -= n
            continue
        want = size - len(entries)
        entries += [(task_id, e) for e in read_page(directory, task_id, data, name, offset, want)]
        offset = 0
        if len(entries) >= size:
            break
    return sum(counts), entries


def page_number(value: object) -> int:
    """A ``?..._page=`` value as a page number (1 for anything that is not a positive number)."""
    try:
        return max(1, int(str(value)))
    except ValueError:
        return 1


BEST_VAL_KEY = "best_val"  # task.data: the best value of each validation metric, kept as metrics arrive


def better(name: str, value: float, best: float | None) -> bool:
    """Whether ``value`` of validation metric ``name`` beats ``best`` (highest accuracy, lowest anything else)."""
    return best is None or (value > best if "accuracy" in name else value < best)


def note_best(best: dict[str, float], entry: dict) -> None:
    """Fold a metrics entry's validation values into ``best`` (name -> best value)."""
    values = entry.get("val")
    if not isinstance(values, dict):
        return
    for name, value in values.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and better(name, value, best.get(name)):
            best[name] = value
