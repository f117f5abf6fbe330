"""Input pipelines: records from a dataset's LMDB through ``tf.data``, decoded in the graph, in parallel.

A Python generator reads the serialized ``tf.train.Example`` records by key (shuffled per epoch for
training); parsing, decoding (PNG/JPEG or raw pixels), mean subtraction and cropping run as graph ops in
``map(num_parallel_calls=AUTOTUNE)``, then batches are prefetched.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import lmdb
import numpy as np
import tensorflow as tf_root

from digits.records import decode_record, record_key

tf = tf_root.compat.v1
AUTOTUNE = tf_root.data.AUTOTUNE
# Records per call into Python: each call of a from_generator generator costs tens of microseconds of GIL
# time, more than decoding a small image, so the generator hands over chunks that tf.data unbatches.
CHUNK = 256

FEATURES = {
    "image/encoded": tf_root.io.FixedLenFeature([], tf_root.string),
    "label": tf_root.io.FixedLenFeature([], tf_root.int64, default_value=-1),
}


@dataclass
class LmdbInfo:
    """What a database holds: its record count, the image shape ``[H, W, C]`` and format of its records."""

    path: str
    entries: int
    shape: list[int]
    format: str = "png"


def open_db(path: str) -> lmdb.Environment:
    """Open a dataset's LMDB read-only, without locking (databases are never written once complete)."""
    if not os.path.isdir(path):
        raise FileNotFoundError(f"database {path} not found: was the dataset deleted, or is it not done?")
    return lmdb.open(path, readonly=True, lock=False, readahead=False, max_readers=64, subdir=True)


def db_info(path: str) -> LmdbInfo:
    """Count the records of the database at ``path`` and read the image shape of its first one."""
    env = open_db(path)
    try:
        entries = env.stat()["entries"]
        if entries == 0:
            raise ValueError(f"database {path} is empty")
        with env.begin() as txn:
            record = decode_record(txn.get(record_key(0)))
        # create_db writes every record of a database in one encoding, so the first one tells the decoder.
        return LmdbInfo(path, entries, [record.height, record.width, record.channels], record.format)
    finally:
        env.close()


def record_generator(path: str, entries: int, shuffle: bool, repeat: bool, seed: int | None):
    """A generator factory for ``tf.data.Dataset.from_generator``: chunks of serialized records of the database.

    Yields 1-D arrays of up to CHUNK records; with ``shuffle`` every epoch visits the records in a new random
    order; with ``repeat`` it never ends.
    """

    def generate():
        rng = np.random.default_rng(seed)
        env = open_db(path)
        try:
            while True:
                order = rng.permutation(entries) if shuffle else np.arange(entries)
                with env.begin(buffers=False) as txn:
                    get = txn.get
                    for start in range(0, entries, CHUNK):
                        # dtype=object keeps records with NUL bytes whole (numpy's bytes_ would strip them).
                        yield np.array([get(b"%08d" % i) for i in order[start : start + CHUNK]], dtype=object)
                if not repeat:
                    return
        finally:
            env.close()

    return generate


def decode(encoded, shape: list[int], fmt: str):
    """Decode one image of format ``fmt``: returns it as float32 HxWxC in 0..255."""
    if fmt == "raw":
        image = tf_root.io.decode_raw(encoded, tf_root.uint8)
    elif fmt == "png":
        image = tf_root.io.decode_png(encoded, channels=shape[2])
    else:
        image = tf_root.io.decode_image(encoded, channels=shape[2], expand_animations=False)
    return tf.cast(tf.reshape(image, shape), tf.float32)


def make_dataset(
    info: LmdbInfo,
    batch_size: int,
    *,
    training: bool,
    shuffle: bool = True,
    seed: int | None = None,
    mean: np.ndarray | None = None,
    crop_size: int | None = None,
):
    """The batched ``tf.data.Dataset`` of ``(images NHWC float32, labels [N] int32)`` for one database.

    Training data repeats forever (epochs are counted by images seen) and is cropped at random; other data
    is read once in order, center-cropped. ``mean`` (HxWxC, or C for a per-pixel mean) is subtracted first.
    """
    generate = record_generator(info.path, info.entries, shuffle and training, repeat=training, seed=seed)
    dataset = tf_root.data.Dataset.from_generator(
        generate, output_signature=tf_root.TensorSpec(shape=[None], dtype=tf_root.string)
    )
    # Parsing is vectorized over a chunk. Decoding runs per image inside a map over whole batches: tf.data's
    # per-element overhead costs more than decoding a small image; batches are prepared in parallel.
    dataset = dataset.map(lambda chunk: tf_root.io.parse_example(chunk, FEATURES)).unbatch()
    dataset = dataset.batch(batch_size, drop_remainder=False)
    mean_const = tf.constant(mean, tf.float32) if mean is not None else None
    height, width, channels = info.shape
    image_spec = tf_root.TensorSpec(info.shape, tf_root.float32)

    def prepare(features):
        images = tf.map_fn(
            lambda encoded: decode(encoded, info.shape, info.format), features["image/encoded"],
            fn_output_signature=image_spec,
        )  # fmt: skip
        if mean_const is not None:
            images = images - mean_const
        if crop_size:
            if training:
                crop = [crop_size, crop_size, channels]
                images = tf.map_fn(lambda image: tf.image.random_crop(image, crop, seed=seed), images)
            else:
                top, left = (height - crop_size) // 2, (width - crop_size) // 2
                images = images[:, top : top + crop_size, left : left + crop_size, :]
        return images, tf.cast(features["label"], tf.int32)

    dataset = dataset.map(prepare, num_parallel_calls=AUTOTUNE, deterministic=True)
    return dataset.prefetch(AUTOTUNE)
