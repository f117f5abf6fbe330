"""Networks written for DIGITS train here as they were pasted (issue 17): its import header, ``tf.contrib``,
``digits.GraphKeys`` summaries, two optimizers, a siamese pair with the contrastive loss, renamed variables,
batch normalization of convolutions."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from helpers import CREATE_MODEL, logged_in_client, make_dataset, post_form, wait_done
from PIL import Image
from seed_networks import FREEZING

from digits.web.services import services_of

pytestmark = pytest.mark.slow

# The lines DIGITS' example networks begin with.
HEADER = """\
from model import Tower
from utils import model_property
import tensorflow as tf
import tensorflow.contrib.slim as slim
import utils as digits
"""

# The seed's freezing LeNet (weight2 renamed by SUFFIX) with summaries for each stage's collection: top-3
# accuracy is a training series under one name and a validation series under another.
SUMMARIES = FREEZING.replace(
    "        return digits.classification_loss(self.inference, self.y)\n",
    """\
        assert isinstance(digits.get_available_gpus(), list)
        accuracy = digits.classification_accuracy(self.inference, self.y)
        self.summaries.append(tf.summary.scalar(accuracy.op.name, accuracy))
        top3 = digits.classification_accuracy_top_n(self.inference, self.y, 3)
        tf.summary.scalar('train_top3', top3, collections=[digits.GraphKeys.SUMMARIES_TRAIN])
        tf.summary.scalar('val_top3', top3, collections=[digits.GraphKeys.SUMMARIES_VAL])
        tf.summary.image('inputs', self.x, max_outputs=2, collections=[digits.GraphKeys.SUMMARIES_TRAIN])
        stage = digits.STAGE_TRAIN if self.is_training else digits.STAGE_VAL
        assert stage in ('train', 'val') and digits.STAGE_INF == 'inf'
        return digits.classification_loss(self.inference, self.y)
""",
).replace("initializer=tf.contrib.layers.xavier_initializer()),\n        }",
          "initializer=tf.contrib.layers.variance_scaling_initializer()),\n        }")  # fmt: skip

# A small GAN: a generator and a discriminator with batch normalization, each trained by its own optimizer.
GAN = """\
class UserModel(Tower):

    @model_property
    def inference(self):
        z = tf.random_uniform([tf.shape(self.x)[0], 16], -1.0, 1.0)
        with tf.variable_scope('generator'):
            net = slim.fully_connected(z, 7 * 7 * 8, activation_fn=None, scope='fc',
                                       weights_regularizer=tf.contrib.layers.l2_regularizer(0.0005))
            net = tf.contrib.layers.batch_norm(net, is_training=self.is_training, activation_fn=tf.nn.relu, scope='bn')
            net = tf.reshape(net, [-1, 7, 7, 8])
            net = slim.conv2d_transpose(net, self.input_shape[2], [5, 5], stride=4, activation_fn=tf.nn.tanh,
                                        scope='deconv')
        return net * 128.0

    def discriminator(self, images, reuse):
        with tf.variable_scope('discriminator', reuse=reuse):
            net = slim.conv2d(images * 0.0125, 8, [5, 5], stride=2, scope='conv',
                              weights_initializer=tf.contrib.layers.xavier_initializer())
            net = slim.fully_connected(slim.flatten(net), 32, activation_fn=None, scope='fc1')
            net = tf.contrib.layers.batch_norm(net, is_training=self.is_training, activation_fn=tf.nn.relu, scope='bn')
            return slim.fully_connected(net, 1, activation_fn=None, scope='fc2')

    @model_property
    def loss(self):
        real = self.discriminator(self.x, reuse=False)
        fake = self.discriminator(self.inference, reuse=True)
        cross_entropy = tf.nn.sigmoid_cross_entropy_with_logits
        d_loss = (tf.reduce_mean(cross_entropy(logits=real, labels=tf.ones_like(real)))
                  + tf.reduce_mean(cross_entropy(logits=fake, labels=tf.zeros_like(fake))))
        g_loss = tf.reduce_mean(cross_entropy(logits=fake, labels=tf.ones_like(fake)))
        d_vars = [v for v in tf.trainable_variables() if '/discriminator/' in v.name]
        g_vars = [v for v in tf.trainable_variables() if '/generator/' in v.name]
        return [{'loss': d_loss, 'vars': d_vars}, {'loss': g_loss, 'vars': g_vars}]
"""

# DIGITS' siamese example in its shape: a pair travels as one color image (green and blue: its two digits),
# two LeNet towers sharing their variables embed them in 2-D, inference returns both embeddings. The towers
# scale their input as DIGITS' LeNet does: unscaled (+-255 after the mean), the first SGD steps at 0.01 can
# throw the embeddings far apart whatever the loss's guard.
SIAMESE = """\
class UserModel(Tower):

    @model_property
    def inference(self):
        pair = tf.reshape(self.x, shape=[-1, self.input_shape[0], self.input_shape[1], self.input_shape[2]])
        _, first, second = tf.split(pair, 3, 3, name='split_channels')
        with slim.arg_scope([slim.conv2d, slim.fully_connected],
                            weights_initializer=tf.contrib.layers.xavier_initializer(),
                            weights_regularizer=slim.l2_regularizer(0.0005)):
            with tf.variable_scope('siamese') as scope:
                first = self.embed(first)
                scope.reuse_variables()
                second = self.embed(second)
        return [first, second]

    def embed(self, images):
        net = slim.conv2d(images * 0.0125, 20, [5, 5], padding='VALID', scope='conv1')
        net = slim.max_pool2d(net, [2, 2], padding='VALID', scope='pool1')
        net = slim.conv2d(net, 50, [5, 5], padding='VALID', scope='conv2')
        net = slim.max_pool2d(net, [2, 2], padding='VALID', scope='pool2')
        net = slim.fully_connected(slim.flatten(net), 500, scope='fc1')
        return tf.reshape(slim.fully_connected(net, 2, activation_fn=None, scope='fc2'), shape=[-1, 2])

    @model_property
    def loss(self):
        similar = tf.to_float(tf.reshape(self.y, shape=[-1]))
        return digits.constrastive_loss(self.inference[0], self.inference[1], similar)
"""


# A LeNet-sized net with batch normalization after each convolution (NHWC), in both ways DIGITS-era networks
# write it: slim's normalizer_fn in an arg_scope, and tf.contrib.layers.batch_norm called on a conv output.
CONV_BATCH_NORM = """\
class UserModel(Tower):

    @model_property
    def inference(self):
        net = tf.reshape(self.x, shape=[-1, self.input_shape[0], self.input_shape[1], self.input_shape[2]])
        with slim.arg_scope([slim.conv2d], normalizer_fn=slim.batch_norm,
                            normalizer_params={'is_training': self.is_training, 'scale': True, 'fused': True}):
            net = slim.conv2d(net * 0.0125, 16, [5, 5], scope='conv1')
        net = slim.max_pool2d(net, [2, 2], scope='pool1')
        net = slim.conv2d(net, 32, [5, 5], activation_fn=None, scope='conv2')
        net = tf.contrib.layers.batch_norm(net, decay=0.9, is_training=self.is_training, activation_fn=tf.nn.relu,
                                           scope='conv2_bn')
        net = slim.max_pool2d(net, [2, 2], scope='pool2')
        return slim.fully_connected(slim.flatten(net), self.nclasses, activation_fn=None, scope='fc')

    @model_property
    def loss(self):
        return digits.classification_loss(self.inference, self.y)
"""


def write_pairs_folder(root: Path, per_class: int = 80) -> Path:
    """Pairs of scikit-learn's digits as 28x28 color PNGs (green: one digit, blue: the other, red: empty), in
    ``different/`` and ``same/``: the labels are 0 for pairs of two classes and 1 for pairs of one, as the
    contrastive loss wants them."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = [
        np.asarray(Image.fromarray((p * (255 / 16)).astype(np.uint8)).resize((28, 28), Image.BILINEAR))
        for p in digits.images
    ]
    rng = np.random.default_rng(0)
    by_class = {c: np.flatnonzero(digits.target == c) for c in range(10)}
    for name, same in (("different", False), ("same", True)):
        (root / name).mkdir(parents=True)
        for index in range(per_class):
            first, other = rng.choice(10, size=2, replace=False)
            a, b = rng.choice(by_class[first], size=2, replace=False)
            if not same:
                b = rng.choice(by_class[other])
            pixels = np.stack([np.zeros((28, 28), np.uint8), images[a], images[b]], axis=2)
            Image.fromarray(pixels).save(root / name / f"{index:03d}.png")
    return root


@pytest.fixture(scope="module")
def app(make_module_app):
    return make_module_app()


@pytest.fixture(scope="module")
def client(app):
    return logged_in_client(app)


@pytest.fixture(scope="module")
def dataset(client, digits_folder) -> str:
    """The 30 digits per class, 25% for validation."""
    return make_dataset(client, digits_folder, folder_pct_val="25")


def train_custom(client, dataset: str, network: str, timeout: float = 300.0, **overrides: str) -> dict:
    """Train ``network`` pasted into the New Model form (DIGITS' defaults: SGD at 0.01) and wait until it is
    Done; returns the model's JSON."""
    fields = {"method": "custom", "custom_network": network, "framework": "tensorflow", "dataset": dataset,
              "train_epochs": "1", "model_name": "pasted", **overrides}  # fmt: skip
    job_id = post_form(client, CREATE_MODEL, fields)["id"]
    wait_done(client, job_id, timeout=timeout)
    return client.get(f"/models/{job_id}.json").get_json()


def series(model: dict, stage: str) -> list[dict]:
    """The model's ``stage`` (train or val) points, each ``{name: value}``."""
    return [m[stage] for m in model["metrics"] if stage in m]


@pytest.fixture(scope="module")
def with_summaries(client, dataset) -> dict:
    """The freezing LeNet with DIGITS' header and each stage's summaries, trained for one epoch."""
    return train_custom(client, dataset, HEADER + SUMMARIES.replace("SUFFIX", ""), model_name="summaries")


def test_header_lines_and_stage_summaries_are_plotted(with_summaries):
    train, val = series(with_summaries, "train"), series(with_summaries, "val")
    assert train and val
    assert {"loss", "accuracy", "train_top3"} <= set(train[-1]) and "val_top3" not in train[-1]
    assert {"loss", "accuracy", "val_top3"} <= set(val[-1]) and "train_top3" not in val[-1]
    assert all(point["val_top3"] >= point["accuracy"] for point in val)  # the label among 3 beats being first


def test_batch_norm_gan_trains_two_optimizers(client, dataset):
    model = train_custom(client, dataset, HEADER + GAN, model_name="gan", use_mean="none")
    for stage in ("train", "val"):
        points = series(model, stage)
        assert points and all(math.isfinite(p["loss1"]) and math.isfinite(p["loss2"]) for p in points), points


def test_siamese_pair_with_the_contrastive_loss(client, tmp_path_factory):
    folder = write_pairs_folder(tmp_path_factory.mktemp("pairs"))
    pairs = make_dataset(client, folder, folder_pct_val="25", resize_channels="3", dataset_name="pairs")
    model = train_custom(client, pairs, HEADER + SIAMESE, model_name="siamese", train_epochs="2")
    losses = [p["loss"] for stage in ("train", "val") for p in series(model, stage)]
    assert losses and all(math.isfinite(loss) for loss in losses), losses
    # Embeddings all at one point would score 0.25 (half the pairs dissimilar, margin 1): it learned more.
    assert series(model, "val")[-1]["loss"] < 0.25, losses
    # Inference answers with the first tower's embedding (two numbers, taken for the two classes' scores).
    image = folder / "same" / "000.png"
    answer = client.post(f"/models/images/classification/classify_one.json?job_id={model['id']}",
                         data={"image_file": (open(image, "rb"), image.name)})  # fmt: skip
    assert answer.status_code == 200, answer.get_json()
    assert len(answer.get_json()["predictions"]) == 2


def test_fine_tuning_renames_variables_to_start_them_anew(client, dataset, app, with_summaries):
    first = services_of(app).store.get(with_summaries["id"])
    snapshot = Path(first.directory) / with_summaries["snapshot_files"][-1]["path"]
    renamed = HEADER + SUMMARIES.replace("SUFFIX", "_not_in_use")
    model = train_custom(client, dataset, renamed, model_name="renamed", custom_network_snapshot=str(snapshot))
    log = client.get(f"/jobs/{model['id']}/log/train").get_data(as_text=True)
    assert "new (initialized): model/weight2_not_in_use, model/bias2_not_in_use" in log
    restored = next(line for line in log.splitlines() if line.startswith("restored from"))
    assert "model/weight1" in restored and "model/fc/weights" in restored and "weight2" not in restored


def test_batch_norm_after_convolutions_trains_and_answers(client, dataset, app, digits_folder):
    model = train_custom(client, dataset, HEADER + CONV_BATCH_NORM, model_name="conv-bn")
    losses = [p["loss"] for stage in ("train", "val") for p in series(model, stage)]
    assert losses and all(math.isfinite(loss) for loss in losses), losses
    # The moving averages the training steps updated are in the snapshot, under tf_slim's names.
    job = services_of(app).store.get(model["id"])
    snapshot = Path(job.directory) / model["snapshot_files"][-1]["path"]
    import tensorflow as tf

    checkpoint = tf.train.load_checkpoint(str(snapshot))
    for layer in ("model/conv1/BatchNorm", "model/conv2_bn"):
        assert np.abs(checkpoint.get_tensor(f"{layer}/moving_mean")).max() > 0, layer
        assert np.abs(checkpoint.get_tensor(f"{layer}/moving_variance") - 1).max() > 0, layer
    assert checkpoint.has_tensor("model/conv1/BatchNorm/gamma") and not checkpoint.has_tensor("model/conv2_bn/gamma")
    image = next((digits_folder / "3").iterdir())
    answer = client.post(f"/models/images/classification/classify_one.json?job_id={model['id']}",
                         data={"image_file": (open(image, "rb"), image.name)})  # fmt: skip
    assert answer.status_code == 200, answer.get_json()
    scores = [score for _, score in answer.get_json()["predictions"]]  # the top 5, in percent
    assert len(scores) == 5 and all(math.isfinite(s) for s in scores) and scores == sorted(scores, reverse=True)


# fused=None takes TensorFlow's fused kernel for these 4-D inputs, fused=False the separate ops: the same results.
@pytest.mark.parametrize("fused", [None, False])
def test_batch_norm_normalizes_batches_in_training_and_uses_moving_statistics_otherwise(fused):
    import tensorflow as tf_root
    import tf_slim

    from digits.tools.tensorflow.model import batch_norm

    tf = tf_root.compat.v1
    assert tf_slim.batch_norm is not batch_norm  # the global tf_slim keeps its own
    rng = np.random.default_rng(0)
    batch = rng.normal([1.0, -5.0, 40.0], [0.5, 3.0, 10.0], size=(16, 6, 6, 3)).astype(np.float32)
    with tf.Graph().as_default(), tf.Session() as sess:
        x = tf.placeholder(tf.float32, [None, 6, 6, 3])
        training = tf.placeholder(tf.bool, [])
        out = batch_norm(x, decay=0.5, scale=True, is_training=training, fused=fused, scope="bn")
        nchw = batch_norm(
            tf.transpose(x, [0, 3, 1, 2]), data_format="NCHW", is_training=True, fused=fused, scope="nchw"
        )
        updates = tf.get_collection(tf.GraphKeys.UPDATE_OPS)
        sess.run(tf.global_variables_initializer())
        normalized = sess.run(out, {x: batch, training: True})
        np.testing.assert_allclose(normalized.mean(axis=(0, 1, 2)), 0, atol=1e-4)
        np.testing.assert_allclose(normalized.std(axis=(0, 1, 2)), 1, atol=1e-2)
        by_channel = sess.run(nchw, {x: batch})
        np.testing.assert_allclose(by_channel.mean(axis=(0, 2, 3)), 0, atol=1e-4)
        np.testing.assert_allclose(by_channel.std(axis=(0, 2, 3)), 1, atol=1e-2)
        for _ in range(3):
            sess.run(updates, {x: batch, training: True})
        variables = {v.op.name: v for v in tf.global_variables()}
        moving_mean, moving_variance = sess.run([variables["bn/moving_mean"], variables["bn/moving_variance"]])
        # Three steps at decay 0.5 cover 7/8 of the way from (0, 1) to the batch's statistics.
        np.testing.assert_allclose(moving_mean, batch.mean(axis=(0, 1, 2)) * 7 / 8, rtol=1e-4)
        np.testing.assert_allclose(moving_variance, 1 / 8 + batch.var(axis=(0, 1, 2)) * 7 / 8, rtol=1e-3)
        shifted = batch + 100.0
        inferred = sess.run(out, {x: shifted, training: False})
        np.testing.assert_allclose(inferred, (shifted - moving_mean) / np.sqrt(moving_variance + 0.001), rtol=1e-4)
