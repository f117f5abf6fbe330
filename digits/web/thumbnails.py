"""Thumbnails for the result pages (Top N, Classify Many): of image files on the server, and of database records.

- ``GET /thumbnails?path=P&size=S``: the image file ``P``, an absolute path whose real location (symlinks
  followed) lies in the data roots and ends in an image extension; anything else is refused before the file
  is opened.
- ``GET /datasets/<job_id>/records/<stage>/<index>.png?size=S``: record ``index`` of a dataset's ``stage``
  database, as the model saw it.

Who may call them: whoever may read pages (a logged-in user; anyone on a single-user server), as for the
dataset's Explore grid. Work per request is bounded: the file at most ``MAX_FILE_BYTES``, images over
``MAX_PIXELS`` refused from their header, JPEGs decoded at reduced scale, a side of at most ``MAX_SIZE``,
and at most ``DECODERS`` decodes at once. Thumbnails are kept in an in-memory LRU of ``CACHE_BYTES`` keyed
by the source's real path and modification time (so an edited file gets a new thumbnail), and answered with
an ETag, Last-Modified and ``Cache-Control: private`` so the browser asks again only with
``If-None-Match``.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import lmdb
import numpy as np
from flask import Blueprint, abort, current_app, request, url_for
from PIL import Image

from digits.data_roots import outside_data_roots
from digits.imaging import ImageError, load_image
from digits.records import decode_record, record_image, record_key
from digits.utils.constants import STAGES
from digits.utils.image import SUPPORTED_EXTENSIONS
from digits.web.jobs import get_job
from digits.web.services import current_services

blueprint = Blueprint("thumbnails", __name__)
DEFAULT_SIZE = 64
MIN_SIZE, MAX_SIZE = 16, 256
MAX_FILE_BYTES = 64 << 20
MAX_PIXELS = 40_000_000
CACHE_BYTES = 32 << 20
DECODERS = 2
MAX_AGE = 3600


class ThumbnailCache:
    """PNG bytes by key, least recently used dropped first once their total passes ``limit`` bytes."""

    def __init__(self, limit: int = CACHE_BYTES):
        self.limit = limit
        self.size = 0
        self._items: OrderedDict[tuple, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self._decoding = threading.BoundedSemaphore(DECODERS)

    def get(self, key: tuple, make: Callable[[], bytes]) -> bytes:
        """The cached thumbnail of ``key``, made (at most ``DECODERS`` at a time) when missing."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        with self._decoding:
            data = make()
        with self._lock:
            if key not in self._items:
                self._items[key] = data
                self.size += len(data)
            while self.size > self.limit and self._items:
                self.size -= len(self._items.popitem(last=False)[1])
        return data


@blueprint.record_once
def _make_cache(state) -> None:
    state.app.extensions["thumbnails"] = ThumbnailCache()


def _size() -> int:
    """The requested side, clamped and rounded to a multiple of 16 (a few sizes per image in the cache)."""
    size = request.args.get("size", DEFAULT_SIZE, type=int)
    return min(max(-(-size // 16) * 16, MIN_SIZE), MAX_SIZE)


def _png(image: Image.Image, size: int) -> bytes:
    image.thumbnail((size, size), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _answer(key: tuple, mtime: float, make: Callable[[], bytes]):
    """The thumbnail response, conditional on the browser's ETag or date."""
    data = current_app.extensions["thumbnails"].get(key, make)
    response = current_app.response_class(data, mimetype="image/png")
    response.set_etag(hashlib.sha1(repr(key).encode()).hexdigest())
    response.last_modified = mtime
    response.cache_control.private = True
    response.cache_control.max_age = MAX_AGE
    return response.make_conditional(request)


def _readable_image(path: str) -> tuple[str, os.stat_result]:
    """The real path and stat of the image file ``path`` names, or the 4xx that says why it is not served."""
    if not path or "\0" in path or not os.path.isabs(path):
        abort(400, description="Give the absolute path of an image on the server (path).")
    refused = outside_data_roots(path, current_services().config.data_roots)
    if refused:
        abort(403, description=refused)
    real = os.path.realpath(path)
    if not real.lower().endswith(SUPPORTED_EXTENSIONS):
        abort(403, description=f"{path} is not an image file ({', '.join(SUPPORTED_EXTENSIONS)}).")
    try:
        stat = os.stat(real)
    except OSError:
        abort(404, description=f"{path} does not exist.")
    if not os.path.isfile(real):
        abort(404, description=f"{path} is not a file.")
    if stat.st_size > MAX_FILE_BYTES:
        abort(413, description=f"{path} is over {MAX_FILE_BYTES >> 20} MiB: too large for a thumbnail.")
    return real, stat


@blueprint.route("/thumbnails")
def image_file():
    """A thumbnail of an image file in the data roots (``path``, absolute) at most ``size`` pixels a side."""
    path = request.args.get("path", "")
    real, stat = _readable_image(path)
    size = _size()

    def make() -> bytes:
        try:
            return _png(load_image(real, 3, max_pixels=MAX_PIXELS, draft_size=(size, size)), size)
        except ImageError as exc:
            abort(415, description=f"{path}: {exc}")

    return _answer(("file", real, stat.st_mtime_ns, size), stat.st_mtime, make)


@blueprint.route("/datasets/<job_id>/records/<stage>/<int:index>.png")
def record(job_id: str, stage: str, index: int):
    """A thumbnail of record ``index`` of the dataset's ``stage`` database."""
    job = get_job(job_id, "dataset")
    if stage not in STAGES:
        abort(404, description=f"A dataset's databases are {', '.join(STAGES)}, not {stage}.")
    db_path = Path(job.directory) / f"{stage}_db"
    data_file = db_path / "data.mdb"
    if not data_file.is_file():
        abort(404, description=f"{job.name} has no {stage} database.")
    mtime = data_file.stat().st_mtime
    size = _size()

    def make() -> bytes:
        env = lmdb.open(str(db_path), readonly=True, lock=False, readahead=False, subdir=True)
        try:
            with env.begin() as txn:
                value = txn.get(record_key(index))
        finally:
            env.close()
        if value is None:
            abort(404, description=f"The {stage} database of {job.name} has no record {index}.")
        return _png(_to_image(record_image(decode_record(value))), size)

    return _answer(("record", str(db_path), mtime, index, size), mtime, make)


def _to_image(pixels: np.ndarray) -> Image.Image:
    """An HxWxC record as a picture: 8-bit as it is, other types stretched to 0-255; gray or RGB channels."""
    if pixels.dtype != np.uint8:
        low, high = float(pixels.min()), float(pixels.max())
        pixels = ((pixels.astype(np.float64) - low) * (255.0 / ((high - low) or 1.0))).astype(np.uint8)
    return Image.fromarray(pixels[:, :, :3] if pixels.shape[2] >= 3 else pixels[:, :, 0])


@blueprint.app_template_global()
def thumbnail_url(name: str, record: int | None = None, dataset: str | None = None, stage: str | None = None,
                  size: int = DEFAULT_SIZE) -> str | None:  # fmt: skip
    """Where a result's picture is: its database record when it has one, else its file on the server;
    None for a URL or an upload (nothing the server keeps)."""
    if record is not None and dataset and stage:
        return url_for("thumbnails.record", job_id=dataset, stage=stage, index=record, size=size)
    if os.path.isabs(name):
        return url_for("thumbnails.image_file", path=name, size=size)
    return None
