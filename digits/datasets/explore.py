"""Reading a dataset's LMDB a page at a time, for the Explore grid (and anything else that browses records)."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path

import lmdb
import numpy as np
from PIL import Image

from digits.records import decode_record, record_key

MIME = {"png": "image/png", "jpg": "image/jpeg"}


@dataclass
class ExplorePage:
    items: list[dict]
    total: int
    pages: int


def record_image_uri(encoded: bytes, fmt: str, height: int, width: int, channels: int) -> str:
    """A ``data:`` URI showing a stored image; raw pixels are encoded as PNG for the browser."""
    if fmt == "raw":
        pixels = np.frombuffer(encoded, dtype=np.uint8).reshape(height, width, channels)
        image = Image.fromarray(pixels[:, :, 0] if channels == 1 else pixels)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        encoded, fmt = buffer.getvalue(), "png"
    return f"data:{MIME[fmt]};base64,{base64.b64encode(encoded).decode()}"


def explore_page(db_path: Path, labels: list[str], page: int, size: int, label: int | None = None) -> ExplorePage:
    """Records ``page * size`` onwards of the database (only those of class ``label`` if given)."""
    index = np.load(db_path / "labels.npy")
    positions = np.flatnonzero(index == label) if label is not None else np.arange(len(index))
    total = int(len(positions))
    pages = max(1, -(-total // size))
    chosen = positions[page * size : (page + 1) * size]
    items = []
    env = lmdb.open(str(db_path), readonly=True, lock=False, readahead=False, subdir=True)
    try:
        with env.begin() as txn:
            for position in chosen:
                key = record_key(int(position))
                record = decode_record(txn.get(key))
                items.append(
                    {
                        "key": key.decode(),
                        "label": record.label,
                        "label_name": labels[record.label]
                        if record.label is not None and record.label < len(labels)
                        else str(record.label),
                        "image": record_image_uri(
                            record.encoded, record.format, record.height, record.width, record.channels
                        ),
                    }
                )
    finally:
        env.close()
    return ExplorePage(items, total, pages)
