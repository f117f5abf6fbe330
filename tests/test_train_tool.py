"""The TensorFlow training program: the seed's networks on a small digits dataset, resume, errors."""

import re
from pathlib import Path

import pytest
import tool_runs
from seed_networks import AUTOENCODER, FREEZING
from tool_runs import REPO, digits_dataset, events_of, gradient_records, write_records

LENET = REPO / "digits" / "standard_networks" / "lenet.py"


ENV = {"TF_CPP_MIN_LOG_LEVEL": "2"}


def run_module(module: str, *args, cwd: Path = REPO, timeout: int = 120) -> tuple[int, list[dict], str]:
    """Run ``python -m module args`` in ``cwd`` as this file's tool runs; see :func:`tool_runs.run_module`."""
    return tool_runs.run_module(module, *args, cwd=cwd, timeout=timeout, env=ENV)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """A digits dataset as the app builds it: train_db, val_db (25%), labels.txt, mean.npy."""
    return digits_dataset(tmp_path_factory.mktemp("dataset"), per_class=60, env=ENV)


def train(dataset: Path, job: Path, network: Path, *args) -> tuple[int, list[dict], str]:
    """Run the training program in the job folder ``job`` on ``dataset``."""
    job.mkdir(exist_ok=True)
    return run_module(
        "digits.tools.tensorflow.main", "--network", network, "--train-db", dataset / "train_db",
        "--val-db", dataset / "val_db", "--labels", dataset / "labels.txt", "--mean", dataset / "mean.npy",
        "--subtract-mean", "image", "--batch-size", 32, "--seed", 1, *args, cwd=job,
    )  # fmt: skip


def test_seed_lenet_trains_and_resumes(dataset, tmp_path):
    job = tmp_path / "job"
    status, events, stderr = train(
        dataset, job, LENET, "--epochs", 2, "--solver", "ADAM", "--learning-rate", 0.001, "--snapshot-interval", 1
    )
    assert status == 0, stderr
    train_metrics = [e for e in events_of(events, "metrics") if "train" in e]
    val_metrics = [e for e in events_of(events, "metrics") if "val" in e]
    assert len(train_metrics) >= 4 and {"loss", "accuracy"} <= set(train_metrics[0]["train"])
    assert train_metrics[0]["lr"] == pytest.approx(0.001)
    assert [e["epoch"] for e in val_metrics][-1] == 2.0 and len(val_metrics) == 2
    assert val_metrics[-1]["val"]["accuracy"] > 0.5  # ten classes: chance is 0.1
    snapshots = events_of(events, "snapshot")
    assert snapshots[-1] == {"event": "snapshot", "epoch": 2.0, "path": "snapshot_2.0.ckpt"}
    assert (job / "snapshot_2.0.ckpt.index").is_file() and any((job / "tb").iterdir())
    progress = events_of(events, "progress")
    assert progress[-1]["done"] == progress[-1]["total"]

    # Resume continues from the last snapshot: epochs carry on, optimizer state comes back.
    status, events, stderr = train(
        dataset, job, LENET, "--epochs", 3, "--solver", "ADAM", "--learning-rate", 0.001, "--resume"
    )
    assert status == 0, stderr
    assert "resumed from" in stderr
    epochs = [e["epoch"] for e in events_of(events, "metrics")]
    assert min(epochs) > 2.0 and max(epochs) == 3.0
    assert events_of(events, "snapshot")[-1]["path"] == "snapshot_3.0.ckpt"
    assert events_of(events, "progress")[0]["done"] > progress[-1]["total"] / 2


def test_a_seed_repeats_a_run_exactly_with_or_without_the_ram_cache(dataset, tmp_path):
    def losses(name: str, *args) -> tuple[list, str]:
        status, events, stderr = train(dataset, tmp_path / name, LENET, "--epochs", 1, "--threads", 2, *args)
        assert status == 0, stderr
        return [e.get("train", e.get("val")) for e in events_of(events, "metrics")], stderr

    cached, stderr = losses("cached")
    assert "decoded the training set into RAM once" in stderr and "training on /cpu:0" in stderr
    again, _ = losses("again")
    decoding, stderr = losses("decoding", "--cache-mb", 0)
    assert "decoded the training set" not in stderr
    # Same batches in the same order from the cache and from the LMDB, the same arithmetic: the same numbers.
    assert cached == again == decoding and len(cached) >= 3


def test_seed_autoencoder_as_printed_names_the_line(dataset, tmp_path):
    network = tmp_path / "network.py"
    network.write_text(AUTOENCODER)
    status, events, _ = train(dataset, tmp_path / "job", network, "--epochs", 1)
    assert status == 1
    assert events_of(events, "error")[0]["message"] == "NameError: name '_x' is not defined (network.py, line 13)"


def test_seed_autoencoder_corrected_trains(dataset, tmp_path):
    network = tmp_path / "network.py"
    network.write_text(AUTOENCODER.replace("tf.reshape(_x,", "tf.reshape(model,"))
    status, events, stderr = train(
        dataset, tmp_path / "job", network, "--epochs", 1, "--solver", "ADAM", "--learning-rate", 0.001
    )
    assert status == 0, stderr
    losses = [e["train"]["loss"] for e in events_of(events, "metrics") if "train" in e]
    assert losses[-1] < 0.8 * losses[0]
    assert events_of(events, "snapshot")[-1]["path"] == "snapshot_1.0.ckpt"


def test_renamed_variables_are_not_restored_and_freeze_keeps_variables(dataset, tmp_path):
    first = tmp_path / "first.py"
    first.write_text(FREEZING.replace("SUFFIX", ""))
    status, events, stderr = train(dataset, tmp_path / "first", first, "--epochs", 1, "--freeze", "^model/fc/")
    assert status == 0, stderr
    assert events_of(events, "result")[0]["frozen"] == ["model/fc/weights", "model/fc/biases"]
    second = tmp_path / "second.py"
    second.write_text(FREEZING.replace("SUFFIX", "_not_in_use"))
    snapshot = tmp_path / "first" / "snapshot_1.0.ckpt"
    status, events, stderr = train(dataset, tmp_path / "second", second, "--epochs", 0.5, "--weights", snapshot)
    assert status == 0, stderr
    weights = events_of(events, "result")[0]["weights"]
    assert weights["restored"] == ["model/bias1", "model/fc/biases", "model/fc/weights", "model/weight1"]
    assert weights["new"] == ["model/weight2_not_in_use", "model/bias2_not_in_use"]
    assert "new (initialized): model/weight2_not_in_use, model/bias2_not_in_use" in stderr


def test_divergence_stops_with_advice(dataset, tmp_path):
    status, events, _ = train(dataset, tmp_path / "job", LENET, "--epochs", 1, "--learning-rate", 1e6)
    assert status == 1
    message = events_of(events, "error")[0]["message"]
    assert re.fullmatch(r"the loss diverged \(NaN\) at epoch [\d.]+; try a lower learning rate", message)


def test_augmentation_trains_and_refuses_what_images_cannot_take(dataset, tmp_path):
    every = ("--aug-flip", "fliplrud", "--aug-quad-rot", "rotall", "--aug-rot", 15, "--aug-scale", 0.1,
             "--aug-noise", 0.02, "--aug-contrast", 0.3, "--aug-whitening")  # fmt: skip
    status, events, stderr = train(dataset, tmp_path / "augmented", LENET, "--epochs", 1, *every)
    assert status == 0, stderr
    losses = [e["train"]["loss"] for e in events_of(events, "metrics") if "train" in e]
    assert losses and all(loss == loss for loss in losses)  # finite, not NaN
    status, events, _ = train(dataset, tmp_path / "hsv", LENET, "--epochs", 1, "--aug-hsv", 0.02, 0.04, 0.06)
    assert status == 1
    assert events_of(events, "error")[0]["message"] == "HSV shifting needs color images"


def test_two_towers_share_variables_and_average_gradients(dataset, tmp_path):
    adam = ("--solver", "ADAM", "--learning-rate", 0.001)
    status, events, stderr = train(dataset, tmp_path / "towers", LENET, "--epochs", 1, "--cpu-towers", 2, *adam)
    assert status == 0, stderr
    assert "training on /cpu:0, /cpu:1" in stderr
    assert events_of(events, "metrics")[-1]["val"]["accuracy"] > 0.5
    import tensorflow as tf

    names = [name for name, _ in tf.train.list_variables(str(tmp_path / "towers" / "snapshot_1.0.ckpt"))]
    model_vars = sorted(n for n in names if n.startswith("model/") and n.count("/") == 2)  # no optimizer slots
    assert model_vars == [f"model/{layer}/{kind}" for layer in ("conv1", "conv2", "fc1", "fc2")
                          for kind in ("biases", "weights")]  # fmt: skip
    odd, events, _ = train(dataset, tmp_path / "odd", LENET, "--epochs", 1, "--cpu-towers", 2, "--batch-size", 33)
    assert odd == 1 and "must split evenly over the 2 devices" in events_of(events, "error")[0]["message"]
    single = tmp_path / "single.py"
    single.write_text(LENET.read_text().replace("class UserModel(Tower):", SINGLE_TOWER))
    status, events, _ = train(dataset, tmp_path / "single", single, "--epochs", 1, "--cpu-towers", 2)
    assert status == 1
    assert events_of(events, "error")[0]["message"] == "this network disables data parallelism: select one GPU"


SINGLE_TOWER = """class UserModel(Tower):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.disableAutoDataParallelism = True
"""
FINE_TUNE_HOOK = """
    def fineTuneHook(self, net):
        # A new classifier on top of the restored network.
        return slim.fully_connected(tf.nn.relu(net), self.nclasses, activation_fn=None, scope='fc_tuned')
"""


def test_fine_tune_hook_shapes_the_model_started_from_weights(dataset, tmp_path):
    network = tmp_path / "network.py"
    network.write_text(LENET.read_text().rstrip() + "\n" + FINE_TUNE_HOOK)
    status, events, stderr = train(dataset, tmp_path / "first", network, "--epochs", 1)
    assert status == 0, stderr
    assert not events_of(events, "result")[-1].get("weights")  # trained from scratch: the hook is not called
    snapshot = tmp_path / "first" / "snapshot_1.0.ckpt"
    status, events, stderr = train(dataset, tmp_path / "tuned", network, "--epochs", 1, "--weights", snapshot)
    assert status == 0, stderr
    weights = events_of(events, "result")[0]["weights"]
    assert weights["new"] == ["model/fc_tuned/weights", "model/fc_tuned/biases"]
    assert "model/fc2/weights" in weights["restored"]
    losses = [e["train"]["loss"] for e in events_of(events, "metrics") if "train" in e]
    assert losses[-1] < losses[0]  # the new layer learns


NOT_SCALAR_LOSS = """\
class UserModel(Tower):
    @model_property
    def inference(self):
        return slim.fully_connected(slim.flatten(self.x), self.nclasses, activation_fn=None, scope='fc')

    @model_property
    def loss(self):
        return tf.square(self.inference)
"""
WRONG_SHAPE = """\
class UserModel(Tower):
    @model_property
    def inference(self):
        # written for 32x32 images
        x = tf.reshape(self.x, shape=[-1, 32, 32, 1])
        return slim.fully_connected(slim.flatten(x), self.nclasses, activation_fn=None, scope='fc')

    @model_property
    def loss(self):
        return digits.classification_loss(self.inference, self.y)
"""


def test_networks_that_do_not_fit_say_what_to_fix(dataset, tmp_path):
    network = tmp_path / "network.py"
    network.write_text(NOT_SCALAR_LOSS)
    status, events, _ = train(dataset, tmp_path / "not-scalar", network, "--epochs", 1)
    assert status == 1
    message = events_of(events, "error")[0]["message"]
    assert (
        message
        == "loss must be a scalar tensor, got a tensor of shape [batch, 10]; reduce it, e.g. with tf.reduce_mean"
    )
    network.write_text(WRONG_SHAPE)
    status, events, _ = train(dataset, tmp_path / "wrong-shape", network, "--epochs", 1)
    assert status == 1
    error = events_of(events, "error")[0]
    # TensorFlow runs the reshape (line 5) as part of slim.flatten's (line 6); either names the user's line.
    assert error["user_line"] in (5, 6)
    assert error["message"] == (
        "Input to reshape is a tensor with 25088 values, but the requested shape requires a multiple of 1024 "
        f"(network.py, line {error['user_line']})"
    )
    assert error["user_source_line"] == WRONG_SHAPE.splitlines()[error["user_line"] - 1]


REGRESSION = """\
class UserModel(Tower):
    @model_property
    def inference(self):
        model = slim.conv2d(self.x / 255.0, 8, [3, 3], scope='conv')
        return slim.fully_connected(slim.flatten(model), 2, activation_fn=None, scope='fc')

    @model_property
    def loss(self):
        loss = digits.mse_loss(self.inference, self.y)
        self.summaries.append(tf.summary.scalar('mse', loss))
        return loss
"""
DENOISER = """\
class UserModel(Tower):
    @model_property
    def inference(self):
        model = slim.conv2d(self.x, 8, [3, 3], scope='conv1')
        return slim.conv2d(model, 1, [3, 3], activation_fn=None, scope='conv2')

    @model_property
    def loss(self):
        return digits.mse_loss(self.inference, self.y)
"""


def test_regression_and_image_to_image_databases_train(tmp_path):
    """Records of data extensions: float vectors (image gradients' slopes) and label arrays (clean images)."""
    slopes, denoise = gradient_records()
    for name, records, source in (("slopes", slopes, REGRESSION), ("denoise", denoise, DENOISER)):
        write_records(tmp_path / f"{name}_db", records)
        network = tmp_path / f"{name}.py"
        network.write_text(source)
        job = tmp_path / name
        job.mkdir()
        status, events, stderr = run_module(
            "digits.tools.tensorflow.main", "--network", network, "--train-db", tmp_path / f"{name}_db",
            "--epochs", 4, "--batch-size", 16, "--solver", "ADAM", "--learning-rate", 0.01, cwd=job,
        )  # fmt: skip
        assert status == 0, stderr
        losses = [e["train"]["loss"] for e in events_of(events, "metrics") if "train" in e]
        assert losses[-1] < 0.5 * losses[0], (name, losses)
    status, events, _ = run_module(
        "digits.tools.tensorflow.main", "--network", tmp_path / "denoise.py", "--train-db", tmp_path / "denoise_db",
        "--epochs", 1, "--aug-flip", "fliplr", cwd=tmp_path / "denoise",
    )  # fmt: skip
    assert status == 1 and "label arrays" in events_of(events, "error")[0]["message"]
