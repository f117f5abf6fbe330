"""What a dataset's LMDB database holds, read from its first record (framework-free: both training tools'
input pipelines start from it), and the mean image as training subtracts it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import lmdb
import numpy as np

from digits.imaging import check_pixels
from digits.records import decode_record, record_key


@dataclass
class LabelInfo:
    """The kind of label a database's records carry (see ``digits.records``).

    ``class`` an integer ``[N]``; ``values`` a float vector ``[N, K]`` of ``shape`` (regression); ``array`` an
    encoded HxWxC ``shape`` array of ``format``/``dtype`` ``[N, H, W, C]`` (segmentation masks, target images);
    ``none`` no label.
    """

    kind: str = "class"
    shape: list[int] = field(default_factory=list)
    format: str = "raw"
    dtype: str = "uint8"


@dataclass
class LmdbInfo:
    """What a database holds: its record count, the image shape ``[H, W, C]``, format and dtype, its labels."""

    path: str
    entries: int
    shape: list[int]
    format: str = "png"
    dtype: str = "uint8"
    label: LabelInfo = field(default_factory=LabelInfo)


def open_db(path: str) -> lmdb.Environment:
    """Open a dataset's LMDB read-only, without locking (databases are never written once complete)."""
    if not os.path.isdir(path):
        raise FileNotFoundError(f"database {path} not found: was the dataset deleted, or is it not done?")
    return lmdb.open(path, readonly=True, lock=False, readahead=False, max_readers=64, subdir=True)


def db_info(path: str, check_size: bool = False) -> LmdbInfo:
    """Count the records of the database at ``path`` and read the image shape and label kind of its first one.

    Raises ValueError for an empty database and, with ``check_size`` (a pipeline that decodes every record
    at this size at once), for images or label arrays too large to decode."""
    env = open_db(path)
    try:
        entries = env.stat()["entries"]
        if entries == 0:
            raise ValueError(f"database {path} is empty")
        with env.begin() as txn:
            record = decode_record(txn.get(record_key(0)))
    finally:
        env.close()
    # Every record of a database has one encoding and one kind of label, so the first one tells the decoder.
    if record.label_array is not None:
        array = record.label_array
        label = LabelInfo("array", list(array.shape), array.format, array.dtype)
    elif record.label_values is not None:
        label = LabelInfo("values", [len(record.label_values)], dtype="float32")
    else:
        label = LabelInfo("class" if record.label is not None else "none")
    if check_size:
        check_pixels(record.height, record.width, f"the images of {path}")
        if record.label_array is not None:
            check_pixels(record.label_array.shape[0], record.label_array.shape[1], f"the label arrays of {path}")
    return LmdbInfo(path, entries, [record.height, record.width, record.channels], record.format, record.dtype, label)


def mean_to_subtract(path: str, mode: str, shape: list[int] | None = None) -> np.ndarray:
    """The mean image saved at ``path`` (.npy, HxW or HxWxC) as ``mode`` subtracts it: HxWxC for ``image``,
    one value per channel for ``pixel``. Raises ValueError when it is not of the images' ``shape``."""
    mean = np.load(path).astype(np.float32)
    if mean.ndim == 2:
        mean = mean[:, :, None]
    if shape is not None and list(mean.shape) != list(shape):
        raise ValueError(f"the mean image {path} is {list(mean.shape)}, the images are {list(shape)}")
    return mean if mode == "image" else mean.mean(axis=(0, 1))
