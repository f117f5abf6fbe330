"""Benchmark the TensorFlow training program against ``model.fit`` and a bare session of the same networks.

    .venv/bin/python bench/train.py [--images 20000] [--batch-size 64] [--epochs 2] [--repeat 3]
        [--resnet-images 512] [--resnet-batch-size 32]

Two networks, each on generated images written as PNG records to an LMDB as ``create_db`` does:

- LeNet on 28x28 grayscale digits (scikit-learn's 8x8 digits upscaled, shifted, with noise; 10 classes),
  where the work around each step weighs most: ours (``python -m digits.tools.tensorflow.main`` from the
  LMDB, SGD, no validation, timed by wall clock between its first and last progress events: start-up and
  graph building left out, metrics included), ``tf.keras`` ``model.fit`` of the same network (same layers,
  L2 0.0005, dropout, SGD) on the images in memory (its last epoch timed), and a bare ``tf.compat.v1``
  session running the standard network's own graph on the images in memory (``tf.data`` from tensors, only
  the training op fetched: the floor of what the network costs);
- a ResNet-style net on 64x64 color images, where compute dominates: the standard ResNet's source with
  widths 16-32-64, ours against the same layers in ``model.fit``;
- our input pipeline alone reading and decoding the LeNet LMDB, no training.

Every measurement runs ``--repeat`` times, interleaved in one process, and the median is kept (other work on
a small shared machine makes single runs vary by 2x). Prints images/s and the ratios with their targets.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import lmdb  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from digits.imaging import encode_image  # noqa: E402 - needs the path above
from digits.records import ImageRecord, encode_record, record_key  # noqa: E402


def make_images(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``count`` noisy 28x28 digits: returns ``(uint8 [N, 28, 28, 1], int labels [N])``."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(digits.images), count)
    images = np.zeros((count, 28, 28, 1), np.uint8)
    for i, pick in enumerate(picks):
        small = Image.fromarray((digits.images[pick] * 16).clip(0, 255).astype(np.uint8))
        big = np.asarray(small.resize((24, 24), Image.Resampling.BILINEAR), dtype=np.float64)
        canvas = np.zeros((28, 28))
        dy, dx = rng.integers(0, 5, 2)
        canvas[dy : dy + 24, dx : dx + 24] = big
        canvas += rng.normal(0, 12, canvas.shape)
        images[i, :, :, 0] = canvas.clip(0, 255).astype(np.uint8)
    return images, digits.target[picks].astype(np.int64)


def make_color_images(count: int, size: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``count`` noisy ``size``x``size`` color images of 10 classes (a class-tinted square on noise): returns
    ``(uint8 [N, size, size, 3], int labels [N])``."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, count)
    tints = rng.integers(0, 256, (10, 3))
    images = rng.normal(96, 32, (count, size, size, 3))
    for i, label in enumerate(labels):
        top, left = rng.integers(0, size // 2, 2)
        images[i, top : top + size // 2, left : left + size // 2] += tints[label] - 96
    return images.clip(0, 255).astype(np.uint8), labels.astype(np.int64)


def write_lmdb(path: str, images: np.ndarray, labels: np.ndarray) -> None:
    """Write PNG records under keys 0..n-1, plus ``labels.npy``, as ``create_db`` lays a database out."""
    height, width, channels = images.shape[1:]
    env = lmdb.open(path, map_size=1 << 30)
    with env.begin(write=True) as txn:
        for i, (pixels, label) in enumerate(zip(images, labels, strict=True)):
            picture = Image.fromarray(pixels[:, :, 0], mode="L") if channels == 1 else Image.fromarray(pixels, "RGB")
            encoded, fmt = encode_image(picture, "png")
            record = ImageRecord(encoded, fmt, height, width, channels, int(label))
            txn.put(record_key(i), encode_record(record), append=True)
    env.close()
    np.save(os.path.join(path, "labels.npy"), labels.astype(np.int32))


@dataclass
class Dataset:
    """Generated images in memory and as an LMDB with its mean and labels files, as a dataset job leaves them."""

    images: np.ndarray
    labels: np.ndarray
    folder: str

    @classmethod
    def write(cls, folder: str, images: np.ndarray, labels: np.ndarray) -> Dataset:
        """Write ``images`` under ``folder``: ``train_db``, ``mean.npy``, ``labels.txt``."""
        os.makedirs(folder)
        write_lmdb(os.path.join(folder, "train_db"), images, labels)
        np.save(os.path.join(folder, "mean.npy"), images.mean(axis=0).astype(np.float32))
        with open(os.path.join(folder, "labels.txt"), "w") as f:
            f.write("".join(f"{i}\n" for i in range(10)))
        return cls(images, labels, folder)

    @property
    def db(self) -> str:
        return os.path.join(self.folder, "train_db")

    @property
    def mean(self) -> np.ndarray:
        return np.load(os.path.join(self.folder, "mean.npy"))

    def centered(self) -> np.ndarray:
        """The images as float32 with the mean image subtracted, as training sees them."""
        return self.images.astype(np.float32) - self.mean


def progress_rate(command: list[str], cwd: str, batch_size: int) -> float:
    """Images/s of a training program run as ``command`` in ``cwd``, from the wall-clock times of its first
    and last progress events (start-up left out). RuntimeError when it fails or makes no progress."""
    env = {**os.environ, "PYTHONPATH": REPO}
    proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    first = last = None
    for line in proc.stdout:
        event = json.loads(line)
        if event["event"] == "progress":
            last = (time.monotonic(), event["done"])
            first = first or last
        elif event["event"] == "error":
            raise RuntimeError(event["message"])
    proc.wait()
    if proc.returncode or first is None or last[1] == first[1]:
        raise RuntimeError(f"the training program failed (exit status {proc.returncode})")
    return (last[1] - first[1]) * batch_size / (last[0] - first[0])


def ours(data: Dataset, network: str, batch_size: int, epochs: float) -> float:
    """Images/s of the training program, from the wall-clock times of its progress events."""
    job = tempfile.mkdtemp(dir=data.folder)
    command = [
        sys.executable, "-m", "digits.tools.tensorflow.main", "--network", network,
        "--train-db", data.db, "--labels", os.path.join(data.folder, "labels.txt"),
        "--mean", os.path.join(data.folder, "mean.npy"), "--subtract-mean", "image",
        "--epochs", str(epochs), "--batch-size", str(batch_size), "--learning-rate", "0.01",
        "--snapshot-interval", "0",
    ]  # fmt: skip
    return progress_rate(command, job, batch_size)


def fit(model, data: Dataset, batch_size: int, epochs: int) -> float:
    """Images/s of ``model.fit`` (SGD 0.01, softmax cross-entropy) on the centered images in memory, its last
    epoch timed."""
    import tensorflow as tf

    model.compile(
        optimizer=tf.keras.optimizers.SGD(0.01),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )

    class EpochTimer(tf.keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.monotonic()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds = time.monotonic() - self.started

    timer = EpochTimer()
    x = data.centered()
    model.fit(x, data.labels, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0, callbacks=[timer])
    return len(x) / timer.seconds


def keras_lenet():
    """The standard LeNet in Keras: same layers, L2 0.0005, dropout."""
    import tensorflow as tf

    layers, l2 = tf.keras.layers, tf.keras.regularizers.l2(0.0005)
    return tf.keras.Sequential(
        [
            tf.keras.Input((28, 28, 1)),
            layers.Rescaling(0.0125),
            layers.Conv2D(20, 5, activation="relu", kernel_regularizer=l2),
            layers.MaxPooling2D(2),
            layers.Conv2D(50, 5, activation="relu", kernel_regularizer=l2),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(500, activation="relu", kernel_regularizer=l2),
            layers.Dropout(0.5),
            layers.Dense(10, kernel_regularizer=l2),
        ]
    )


RESNET_WIDTHS = [16, 32, 64]


def resnet_source(path: str) -> str:
    """Write the standard ResNet's source at ``path`` with widths RESNET_WIDTHS (stem included); returns ``path``."""
    with open(os.path.join(REPO, "digits", "standard_networks", "resnet.py")) as f:
        source = f.read()
    for old, new in (
        ("[64, 128, 256, 512]", str(RESNET_WIDTHS)),
        (
            'slim.conv2d(model, 64, [3, 3], scope="conv1")',
            f'slim.conv2d(model, {RESNET_WIDTHS[0]}, [3, 3], scope="conv1")',
        ),
    ):
        if old not in source:
            raise RuntimeError(f"the standard ResNet no longer has {old!r}: update bench/train.py")
        source = source.replace(old, new)
    with open(path, "w") as f:
        f.write(source)
    return path


def keras_resnet(shape: tuple[int, int, int]):
    """The ResNet-style net of :func:`resnet_source` in Keras: 3x3 convolutions without bias, batch norm
    (momentum 0.9, epsilon 1e-5), ReLU, L2 0.0001, two basic blocks a stage, global average pooling."""
    import tensorflow as tf

    layers, l2 = tf.keras.layers, tf.keras.regularizers.l2(0.0001)

    def conv(net, width, size, stride=1, relu=True):
        net = layers.Conv2D(width, size, stride, padding="same", use_bias=False, kernel_regularizer=l2)(net)
        net = layers.BatchNormalization(momentum=0.9, epsilon=1e-5)(net)
        return layers.ReLU()(net) if relu else net

    def block(net, width, stride):
        shortcut = net if stride == 1 and net.shape[-1] == width else conv(net, width, 1, stride, relu=False)
        net = conv(conv(net, width, 3, stride), width, 3, relu=False)
        return layers.ReLU()(layers.Add()([net, shortcut]))

    inputs = tf.keras.Input(shape)
    net = conv(layers.Rescaling(1.0 / 64)(inputs), RESNET_WIDTHS[0], 3)
    for stage, width in enumerate(RESNET_WIDTHS):
        net = block(block(net, width, 1 if stage == 0 else 2), width, 1)
    net = layers.GlobalAveragePooling2D()(net)
    return tf.keras.Model(inputs, layers.Dense(10)(net))


def bare_session(data: Dataset, network: str, batch_size: int, steps: int) -> float:
    """Images/s of the network's own graph (its loss plus L2, plain SGD) in a ``tf.compat.v1`` session fed by
    ``tf.data`` from the centered images in memory, fetching only the training op: what the step itself costs."""
    import tensorflow as tf_root

    from digits.tools.tensorflow.model import load_network

    tf = tf_root.compat.v1
    with tf_root.Graph().as_default():
        dataset = tf_root.data.Dataset.from_tensor_slices((data.centered(), data.labels.astype(np.int32)))
        dataset = dataset.shuffle(len(data.labels)).repeat().batch(batch_size).prefetch(2)
        x, y = tf.data.make_one_shot_iterator(dataset).get_next()
        with tf.variable_scope("model"):
            tower = load_network(network)(x, y, list(data.images.shape[1:]), 10, is_training=True)
            loss = tower.loss + tf.add_n(tf.losses.get_regularization_losses())
        with tf.control_dependencies(tf.get_collection(tf.GraphKeys.UPDATE_OPS)):
            train_op = tf.train.GradientDescentOptimizer(0.01).minimize(loss)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            for _ in range(20):  # warm up: first runs build kernels and fill the prefetch buffer
                sess.run(train_op)
            started = time.monotonic()
            for _ in range(steps):
                sess.run(train_op)
            return steps * batch_size / (time.monotonic() - started)


def pipeline(data: Dataset, batch_size: int, batches: int) -> float:
    """Images/s of our input pipeline alone from the LMDB: read, parse, decode, subtract the mean, batch."""
    from digits.tools.lmdb_info import db_info
    from digits.tools.tensorflow.data import make_dataset

    dataset = make_dataset(db_info(data.db, check_size=True), batch_size, training=True, mean=data.mean, seed=0)
    iterator = iter(dataset)
    for _ in range(20):  # fill the prefetch buffer and let AUTOTUNE settle
        next(iterator)
    started = time.monotonic()
    for _ in range(batches):
        next(iterator)
    return batches * batch_size / (time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20_000, help="LeNet's images")
    parser.add_argument("--batch-size", type=int, default=64, help="LeNet's batch size")
    parser.add_argument("--epochs", type=int, default=2, help="epochs of each training run")
    parser.add_argument("--resnet-images", type=int, default=512)
    parser.add_argument("--resnet-batch-size", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement; the median is kept")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-train-") as work:
        digits = Dataset.write(os.path.join(work, "lenet"), *make_images(args.images))
        colors = Dataset.write(os.path.join(work, "resnet"), *make_color_images(args.resnet_images))
        lenet = os.path.join(REPO, "digits", "standard_networks", "lenet.py")
        resnet = resnet_source(os.path.join(work, "resnet.py"))
        batch, rbatch = args.batch_size, args.resnet_batch_size
        lenet_steps = args.epochs * args.images // batch
        measures = {
            "lenet ours": lambda: ours(digits, lenet, batch, args.epochs),
            "lenet model.fit": lambda: fit(keras_lenet(), digits, batch, args.epochs),
            "lenet bare session": lambda: bare_session(digits, lenet, batch, lenet_steps),
            "resnet ours": lambda: ours(colors, resnet, rbatch, args.epochs),
            "resnet model.fit": lambda: fit(keras_resnet(colors.images.shape[1:]), colors, rbatch, args.epochs),
            "input pipeline": lambda: pipeline(digits, batch, max(100, args.images // batch)),
        }
        print(
            f"{os.cpu_count()} CPUs; LeNet: {args.images} images 28x28x1, batch {batch}; ResNet-style "
            f"(widths {RESNET_WIDTHS}): {args.resnet_images} images 64x64x3, batch {rbatch}; {args.epochs} epochs"
        )
        rates: dict[str, list[float]] = {name: [] for name in measures}
        for _ in range(args.repeat):
            for name, measure in measures.items():
                rates[name].append(measure())
        median = {name: float(np.median(runs)) for name, runs in rates.items()}
        for name, runs in rates.items():
            print(f"{name:20s} {median[name]:8,.0f} images/s (runs: {', '.join(f'{r:,.0f}' for r in runs)})")
        for numerator, denominator, target in (
            ("lenet ours", "lenet model.fit", 1.0),
            ("lenet ours", "lenet bare session", 0.95),
            ("resnet ours", "resnet model.fit", 1.0),
            ("input pipeline", "lenet ours", 4.0),
        ):
            ratio = median[numerator] / median[denominator]
            print(f"{numerator} / {denominator}: {ratio:.2f}x (target {target}x)")


if __name__ == "__main__":
    main()
