"""Input pipelines: records from a dataset's LMDB through ``tf.data``, decoded in the graph, in parallel.

A Python generator reads the serialized ``tf.train.Example`` records by key (shuffled per epoch for
training); parsing, decoding (PNG/JPEG or raw pixels), mean subtraction and cropping run as graph ops in
``map(num_parallel_calls=AUTOTUNE)``, then batches are prefetched.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import tensorflow as tf_root

from digits.tools.lmdb_info import LmdbInfo, open_db
from digits.tools.training import AugmentationChoices

tf = tf_root.compat.v1
AUTOTUNE = tf_root.data.AUTOTUNE
# Records per call into Python: each call of a from_generator generator costs tens of microseconds of GIL
# time, more than decoding a small image, so the generator hands over chunks that tf.data unbatches.
CHUNK = 256


def features_of(info: LmdbInfo) -> dict:
    """What ``tf.io.parse_example`` reads of each record of the database ``info`` describes."""
    features = {"image/encoded": tf_root.io.FixedLenFeature([], tf_root.string)}
    if info.label.kind == "class":
        features["label"] = tf_root.io.FixedLenFeature([], tf_root.int64, default_value=-1)
    elif info.label.kind == "values":
        features["label/values"] = tf_root.io.FixedLenFeature(info.label.shape, tf_root.float32)
    elif info.label.kind == "array":
        features["label/encoded"] = tf_root.io.FixedLenFeature([], tf_root.string)
    return features


def record_order(entries: int, shuffle: bool, repeat: bool, seed: int | None):
    """The record indices training reads, in chunks of up to CHUNK: with ``shuffle`` every epoch visits the
    records in a new random order drawn from ``seed``; with ``repeat`` it never ends. Both the LMDB reader
    and the RAM cache read in this order, so a seed gives the same batches either way."""
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(entries) if shuffle else np.arange(entries)
        for start in range(0, entries, CHUNK):
            yield order[start : start + CHUNK]
        if not repeat:
            return


def record_generator(path: str, entries: int, shuffle: bool, repeat: bool, seed: int | None):
    """A generator factory for ``tf.data.Dataset.from_generator``: chunks of serialized records of the database,
    1-D arrays of up to CHUNK records in the order of :func:`record_order`."""

    def generate():
        env = open_db(path)
        try:
            with env.begin(buffers=False) as txn:
                for chunk in record_order(entries, shuffle, repeat, seed):
                    # dtype=object keeps records with NUL bytes whole (numpy's bytes_ would strip them).
                    yield np.array([txn.get(b"%08d" % i) for i in chunk], dtype=object)
        finally:
            env.close()

    return generate


def decode(encoded, shape: list[int], fmt: str, dtype: str = "uint8"):
    """Decode one image (or label array) of format ``fmt``: returns it as float32 HxWxC, values as stored."""
    return tf.cast(decode_stored(encoded, shape, fmt, dtype), tf.float32)


def decode_stored(encoded, shape: list[int], fmt: str, dtype: str = "uint8"):
    """Decode one image (or label array) of format ``fmt``: returns it HxWxC in the dtype it is stored in."""
    if fmt == "raw":
        image = tf_root.io.decode_raw(encoded, tf_root.as_dtype(dtype))
    elif fmt == "png":
        image = tf_root.io.decode_png(encoded, channels=shape[2], dtype=tf_root.as_dtype(dtype))
    else:
        image = tf_root.io.decode_image(encoded, channels=shape[2], expand_animations=False)
    return tf.reshape(image, shape)


def decoded_size(info: LmdbInfo) -> int:
    """Bytes that :func:`decode_all` holds for the database: its images as stored, and its labels as float32
    or int32 (4 bytes a value)."""
    label_values = math.prod(info.label.shape) if info.label.kind in ("values", "array") else 1
    return info.entries * (math.prod(info.shape) * np.dtype(info.dtype).itemsize + 4 * label_values)


def decode_all(info: LmdbInfo) -> tuple[np.ndarray, np.ndarray]:
    """Decode every record of the database once, in key order, with the ops training decodes with: returns
    ``(images [N, H, W, C] as stored, labels as make_dataset documents them)``. Runs in a graph of its own."""
    with tf_root.Graph().as_default():
        dataset = tf_root.data.Dataset.from_generator(
            record_generator(info.path, info.entries, shuffle=False, repeat=False, seed=None),
            output_signature=tf_root.TensorSpec(shape=[None], dtype=tf_root.string),
        )
        features = features_of(info)

        def decoded(chunk):
            parsed = tf_root.io.parse_example(chunk, features)
            images = tf.map_fn(
                lambda encoded: decode_stored(encoded, info.shape, info.format, info.dtype), parsed["image/encoded"],
                fn_output_signature=tf_root.TensorSpec(info.shape, tf_root.as_dtype(info.dtype)),
            )  # fmt: skip
            return images, labels_of(parsed, info)

        dataset = dataset.map(decoded, num_parallel_calls=AUTOTUNE, deterministic=True)
        iterator = tf.data.make_initializable_iterator(dataset)
        images, labels = iterator.get_next()
        chunks = []
        with tf.Session() as sess:
            sess.run(iterator.initializer)
            while True:
                try:
                    chunks.append(sess.run([images, labels]))
                except tf_root.errors.OutOfRangeError:
                    break
    return np.concatenate([c[0] for c in chunks]), np.concatenate([c[1] for c in chunks])


def cached_generator(images: np.ndarray, labels: np.ndarray, batch_size: int, order):
    """A generator factory for ``from_generator``: batches of ``(images, labels)`` of decoded arrays, taken in
    the chunks of indices of the iterable ``order`` makes, ``batch_size`` at a time across epochs as
    ``unbatch().batch(batch_size)`` would cut them (a last smaller batch when ``order`` ends)."""

    def generate():
        pending: list[np.ndarray] = []
        count = 0
        for chunk in order():
            pending.append(chunk)
            count += len(chunk)
            while count >= batch_size:
                indices = np.concatenate(pending)
                yield images[indices[:batch_size]], labels[indices[:batch_size]]
                pending, count = [indices[batch_size:]], count - batch_size
        if count:
            indices = np.concatenate(pending)
            yield images[indices], labels[indices]

    return generate


@dataclass
class Augmentation(AugmentationChoices):
    """The augmentation choices (see :class:`~digits.tools.training.AugmentationChoices`) made with graph ops."""

    def apply(self, images, seed: int | None):
        """Augment a batch of NHWC float images with pixel values in [0, 255]."""
        flips = {"fliplr": [tf.image.flip_left_right], "flipud": [tf.image.flip_up_down]}
        flips["fliplrud"] = flips["fliplr"] + flips["flipud"]
        for flip in flips.get(self.flip, []):
            images = tf.map_fn(
                lambda image, flip=flip: tf.cond(
                    tf.random.uniform([], seed=seed) < 0.5, lambda: flip(image), lambda: image
                ),
                images,
            )
        if self.quad_rot in self.QUARTER_TURNS:
            turns = tf.constant(self.QUARTER_TURNS[self.quad_rot])

            def rotate(image):
                k = turns[tf.random.uniform([], 0, len(self.QUARTER_TURNS[self.quad_rot]), tf.int32, seed=seed)]
                return tf.image.rot90(image, k)

            images = tf.map_fn(rotate, images)
        if self.rotation or self.scale:
            images = self._rotate_and_scale(images, seed)
        if self.hsv:
            hue, saturation, value = self.hsv

            def shift(image):
                image = tf.image.random_hue(image / 255.0, hue, seed=seed) if hue else image / 255.0
                if saturation:
                    image = tf.image.random_saturation(image, 1 - saturation, 1 + saturation, seed=seed)
                if value:
                    image = image * tf.random.uniform([], 1 - value, 1 + value, seed=seed)
                return tf.clip_by_value(image, 0.0, 1.0) * 255.0

            images = tf.map_fn(shift, images)
        if self.contrast:
            images = tf.map_fn(
                lambda image: tf.image.random_contrast(
                    image, max(0.0, 1 - self.contrast), 1 + self.contrast, seed=seed
                ),
                images,
            )
        if self.noise:
            images = images + tf.random.normal(tf.shape(images), stddev=self.noise * 255.0, seed=seed)
        return images

    def _rotate_and_scale(self, images, seed: int | None):
        # One projective transform per image: rotate by +-rotation degrees and scale about the center.
        shape = tf.shape(images)
        n, height, width = shape[0], tf.cast(shape[1], tf.float32), shape[2]
        angle = tf.random.uniform([n], -self.rotation, self.rotation, seed=seed) * (math.pi / 180.0)
        factor = tf.maximum(1.0 + tf.random.normal([n], stddev=self.scale, seed=seed), 0.1)
        cos, sin = tf.cos(angle) / factor, tf.sin(angle) / factor
        cx, cy = (tf.cast(width, tf.float32) - 1) / 2, (height - 1) / 2
        zeros = tf.zeros([n])
        transforms = tf.stack(
            [cos, sin, cx - cos * cx - sin * cy, -sin, cos, cy + sin * cx - cos * cy, zeros, zeros], axis=1
        )
        return tf_root.raw_ops.ImageProjectiveTransformV3(
            images=images, transforms=transforms, output_shape=shape[1:3], fill_value=0.0,
            interpolation="BILINEAR", fill_mode="REFLECT",
        )  # fmt: skip


def center_crop(images, crop_size: int, height: int, width: int):
    """The ``crop_size`` square at the centre of NHWC ``images`` of ``height`` x ``width`` (as validation crops)."""
    top, left = (height - crop_size) // 2, (width - crop_size) // 2
    return images[:, top : top + crop_size, left : left + crop_size, :]


def make_dataset(
    info: LmdbInfo,
    batch_size: int,
    *,
    training: bool,
    shuffle: bool = True,
    seed: int | None = None,
    mean: np.ndarray | None = None,
    crop_size: int | None = None,
    augmentation: Augmentation | None = None,
    cache: tuple[np.ndarray, np.ndarray] | None = None,
    threads: int = 0,
):
    """The batched ``tf.data.Dataset`` of ``(images NHWC float32, labels)`` for one database.

    Labels are int32 ``[N]`` for classes, float32 ``[N, K]`` for value vectors, float32 ``[N, H, W, C]`` for
    label arrays (as stored: class indices of a mask, pixels of a target image), int32 -1 when there are none.

    Training data repeats forever (epochs are counted by images seen) and is cropped at random; other data
    is read once in order, center-cropped. ``mean`` (HxWxC, or C for a per-pixel mean) is subtracted first.
    ``cache``, the database's :func:`decode_all`, replaces reading and decoding its records: same batches.
    ``threads`` (when above 0) gives the pipeline a pool of that many threads of its own.
    """
    order = functools.partial(record_order, info.entries, shuffle and training, training, seed)
    if cache is None:
        dataset = tf_root.data.Dataset.from_generator(
            record_generator(info.path, info.entries, shuffle and training, repeat=training, seed=seed),
            output_signature=tf_root.TensorSpec(shape=[None], dtype=tf_root.string),
        )
        # Parsing is vectorized over a chunk. Decoding runs per image inside a map over whole batches: tf.data's
        # per-element overhead costs more than decoding a small image; batches are prepared in parallel.
        features = features_of(info)
        dataset = dataset.map(lambda chunk: tf_root.io.parse_example(chunk, features)).unbatch()
        dataset = dataset.batch(batch_size, drop_remainder=False)
    else:
        images, labels = cache
        dataset = tf_root.data.Dataset.from_generator(
            cached_generator(images, labels, batch_size, order),
            output_signature=(
                tf_root.TensorSpec([None, *images.shape[1:]], tf_root.as_dtype(images.dtype)),
                tf_root.TensorSpec([None, *labels.shape[1:]], tf_root.as_dtype(labels.dtype)),
            ),
        )
    mean_const = tf.constant(mean, tf.float32) if mean is not None else None
    height, width, channels = info.shape
    image_spec = tf_root.TensorSpec(info.shape, tf_root.float32)

    def decoded(features):
        images = tf.map_fn(
            lambda encoded: decode(encoded, info.shape, info.format, info.dtype), features["image/encoded"],
            fn_output_signature=image_spec,
        )  # fmt: skip
        return images, labels_of(features, info)

    def prepare(images, labels):
        if training and augmentation is not None:
            images = augmentation.apply(images, seed)
        if augmentation is not None and augmentation.whitening:
            images = tf.map_fn(tf.image.per_image_standardization, images)
        elif mean_const is not None:
            images = images - mean_const
        if crop_size:
            if training:
                crop = [crop_size, crop_size, channels]
                images = tf.map_fn(lambda image: tf.image.random_crop(image, crop, seed=seed), images)
            else:
                images = center_crop(images, crop_size, height, width)
        return images, labels

    def from_records(features):
        return prepare(*decoded(features))

    def from_cache(images, labels):
        return prepare(tf.cast(images, tf.float32), labels)

    prepared = from_records if cache is None else from_cache
    batches = dataset.map(prepared, num_parallel_calls=AUTOTUNE, deterministic=True)
    if threads > 0:
        options = tf_root.data.Options()
        options.threading.private_threadpool_size = threads
        batches = batches.with_options(options)
    return batches.prefetch(AUTOTUNE)


def labels_of(features: dict, info: LmdbInfo):
    """A batch's labels from its parsed features, as :func:`make_dataset` documents them."""
    label = info.label
    if label.kind == "class":
        return tf.cast(features["label"], tf.int32)
    if label.kind == "values":
        return features["label/values"]
    if label.kind == "array":
        return tf.map_fn(
            lambda encoded: decode(encoded, label.shape, label.format, label.dtype), features["label/encoded"],
            fn_output_signature=tf_root.TensorSpec(label.shape, tf_root.float32),
        )  # fmt: skip
    return tf.fill([tf.shape(features["image/encoded"])[0]], -1)
