"""The PyTorch training program by hand: LeNet on a small digits dataset, resume, weights by name, errors."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tool_runs
from tool_runs import REPO, digits_dataset, events_of, gradient_records, write_records

torch = pytest.importorskip("torch")

LENET = REPO / "digits" / "standard_networks" / "torch" / "lenet.py"
TOOL = "digits.tools.torch.main"


ENV = {"OMP_NUM_THREADS": "2"}


def run_module(module: str, *args, cwd: Path = REPO, timeout: int = 120) -> tuple[int, list[dict], str]:
    """Run ``python -m module args`` in ``cwd`` as this file's tool runs; see :func:`tool_runs.run_module`."""
    return tool_runs.run_module(module, *args, cwd=cwd, timeout=timeout, env=ENV)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """A digits dataset as the app builds it: train_db, val_db (25%), labels.txt, mean.npy."""
    return digits_dataset(tmp_path_factory.mktemp("dataset"), per_class=40, env=ENV)


def dataset_args(dataset: Path, network: Path) -> list:
    return [
        "--network", network, "--train-db", dataset / "train_db", "--val-db", dataset / "val_db",
        "--labels", dataset / "labels.txt", "--mean", dataset / "mean.npy", "--subtract-mean", "image",
        "--batch-size", 32, "--seed", 1,
    ]  # fmt: skip


def train(dataset: Path, job: Path, network: Path, *args) -> tuple[int, list[dict], str]:
    """Run the training program in the job folder ``job`` on ``dataset``."""
    job.mkdir(exist_ok=True)
    return run_module(TOOL, *dataset_args(dataset, network), *args, cwd=job)


ADAM = ("--solver", "ADAM", "--learning-rate", 0.001)
# Runs the tool in a process that then reports whether TensorFlow was ever imported.
WITHOUT_TF = """
import json, sys
from digits.tools.torch.main import main
status = main(sys.argv[1:])
print(json.dumps({"event": "modules", "tensorflow": any(m.split(".")[0] == "tensorflow" for m in sys.modules)}))
sys.exit(status)
"""


def test_lenet_trains_without_tensorflow_and_resumes_with_optimizer_state(dataset, tmp_path):
    job = tmp_path / "job"
    job.mkdir()
    args = [*dataset_args(dataset, LENET), "--epochs", 2, *ADAM, "--snapshot-interval", 1]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "2"}
    proc = subprocess.run(
        [sys.executable, "-c", WITHOUT_TF, *map(str, args)], capture_output=True, text=True, env=env, cwd=job
    )
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert events_of(events, "modules") == [{"event": "modules", "tensorflow": False}]
    train_metrics = [e for e in events_of(events, "metrics") if "train" in e]
    val_metrics = [e for e in events_of(events, "metrics") if "val" in e]
    assert len(train_metrics) >= 4 and set(train_metrics[0]["train"]) == {"loss", "accuracy"}
    assert train_metrics[0]["lr"] == pytest.approx(0.001)
    assert [e["epoch"] for e in val_metrics] == [1.0, 2.0]
    assert val_metrics[-1]["val"]["accuracy"] > 0.5  # ten classes: chance is 0.1
    snapshots = events_of(events, "snapshot")
    assert snapshots == [
        {"event": "snapshot", "epoch": 1.0, "path": "snapshot_1.0.pt"},
        {"event": "snapshot", "epoch": 2.0, "path": "snapshot_2.0.pt"},
    ]
    assert any((job / "tb").iterdir())
    progress = events_of(events, "progress")
    assert progress[-1]["done"] == progress[-1]["total"]
    first = torch.load(job / "snapshot_2.0.pt", weights_only=True)
    assert first["framework"] == "torch" and first["facts"]["input_shape"] == [28, 28, 1]

    # Resume continues from the last snapshot: epochs carry on, Adam's moments and step count come back.
    status, events, stderr = train(dataset, job, LENET, "--epochs", 3, *ADAM, "--resume")
    assert status == 0, stderr
    assert "resumed from snapshot_2.0.pt" in stderr
    epochs = [e["epoch"] for e in events_of(events, "metrics")]
    assert min(epochs) > 2.0 and max(epochs) == 3.0
    assert events_of(events, "snapshot")[-1]["path"] == "snapshot_3.0.pt"
    assert events_of(events, "progress")[0]["done"] > first["step"]
    last = torch.load(job / "snapshot_3.0.pt", weights_only=True)
    adam_steps = {float(state["step"]) for state in last["optimizer"]["state"].values()}
    assert adam_steps == {float(last["step"])} and last["step"] > first["step"]


RENAMED = LENET.read_text().replace("self.fc2", "self.classifier")


def test_weights_by_name_report_restored_and_new_and_freeze_keeps_them(dataset, tmp_path):
    status, events, stderr = train(dataset, tmp_path / "first", LENET, "--epochs", 1, "--freeze", r"^conv1\.")
    assert status == 0, stderr
    assert events_of(events, "result")[0]["frozen"] == ["conv1.weight", "conv1.bias"]
    snapshot = tmp_path / "first" / "snapshot_1.0.pt"
    start = torch.load(snapshot, weights_only=True)["model"]

    network = tmp_path / "renamed.py"
    network.write_text(RENAMED)
    status, events, stderr = train(
        dataset, tmp_path / "second", network, "--epochs", 0.5, "--weights", snapshot, "--freeze", r"^conv"
    )
    assert status == 0, stderr
    weights = events_of(events, "result")[0]["weights"]
    assert weights["restored"] == ["conv1.bias", "conv1.weight", "conv2.bias", "conv2.weight", "fc1.bias", "fc1.weight"]
    assert weights["new"] == ["classifier.weight", "classifier.bias"] and weights["mismatched"] == []
    assert "new (initialized): classifier.weight, classifier.bias" in stderr
    tuned = torch.load(tmp_path / "second" / "snapshot_0.5.pt", weights_only=True)["model"]
    assert torch.equal(tuned["conv2.weight"], start["conv2.weight"])  # frozen: restored and never trained
    assert not torch.equal(tuned["fc1.weight"], start["fc1.weight"])

    tf_checkpoint = tmp_path / "snapshot_1.0.ckpt"
    (tmp_path / "snapshot_1.0.ckpt.index").write_bytes(b"")
    status, events, _ = train(dataset, tmp_path / "third", LENET, "--epochs", 1, "--weights", tf_checkpoint)
    assert status == 1 and "is a TensorFlow checkpoint" in events_of(events, "error")[0]["message"]


SYNTAX_ERROR = """\
import torch
from torch import nn


class UserModel(nn.Module):
    def __init__(self, input_shape, nclasses):
        super().__init__()
        self.fc = nn.Linear(28 * 28, nclasses
"""
WRONG_SHAPE = """\
class UserModel(nn.Module):
    def __init__(self, input_shape, nclasses):
        super().__init__()
        self.fc = nn.Linear(32 * 32, nclasses)

    def forward(self, x):
        # written for 32x32 images
        x = x.reshape(-1, 32 * 32)
        return self.fc(x)
"""
WRONG_CLASSES = """\
class UserModel(nn.Module):
    def __init__(self, input_shape, nclasses):
        super().__init__()
        self.fc = nn.Linear(28 * 28, 7)

    def forward(self, x):
        return self.fc(x.flatten(1))
"""


@pytest.mark.parametrize(
    ("source", "message", "line"),
    [
        (SYNTAX_ERROR, "SyntaxError: '(' was never closed (network.py, line 8)", 8),
        (WRONG_SHAPE, "RuntimeError: shape '[-1, 1024]' is invalid for input of size 25088 (network.py, line 8)", 8),
        (
            WRONG_CLASSES,
            "the output of forward is [batch, 7]; classification into 10 classes needs logits [batch, 10] "
            "(or define loss(output, y)) (network.py, line 6)",
            6,
        ),
        ("class Network(nn.Module):\n    pass\n", "network.py must define class UserModel(torch.nn.Module)", None),
    ],
    ids=["syntax", "reshape", "classes", "no-usermodel"],
)
def test_networks_that_do_not_fit_name_the_line(dataset, tmp_path, source, message, line):
    network = tmp_path / "network.py"
    network.write_text(source)
    status, events, _ = train(dataset, tmp_path / "job", network, "--epochs", 1)
    assert status == 1
    error = events_of(events, "error")[0]
    assert error["message"] == message
    assert error.get("user_line") == line
    if line:
        assert error["user_source_line"] == source.splitlines()[line - 1]


def test_divergence_stops_with_advice(dataset, tmp_path):
    status, events, _ = train(dataset, tmp_path / "job", LENET, "--epochs", 1, "--learning-rate", 1e6)
    assert status == 1
    message = events_of(events, "error")[0]["message"]
    assert re.fullmatch(r"the loss diverged \((NaN|infinite)\) at epoch [\d.]+; try a lower learning rate", message)
    assert not events_of(events, "snapshot")


def test_a_seed_repeats_a_run_exactly(dataset, tmp_path):
    """Same initial weights, order of images, dropout and augmentation: the same weights to the last bit."""
    runs = []
    for job in ("first", "again"):
        status, events, stderr = train(dataset, tmp_path / job, LENET, "--epochs", 1, "--aug-flip", "fliplr",
                                       "--aug-noise", 0.02, "--crop-size", 26)  # fmt: skip
        assert status == 0, stderr
        runs.append(torch.load(tmp_path / job / "snapshot_1.0.pt", weights_only=True)["model"])
    first, again = runs
    assert all(torch.equal(first[name], again[name]) for name in first)


def test_bf16_mixed_precision_trains_on_the_cpu_and_fp16_asks_for_a_gpu(dataset, tmp_path):
    status, events, stderr = train(dataset, tmp_path / "bf16", LENET, "--epochs", 2, *ADAM, "--precision", "bf16")
    assert status == 0, stderr
    assert "mixed precision: the forward pass and the loss in bf16, weights and gradients in fp32" in stderr
    losses = [e["train"]["loss"] for e in events_of(events, "metrics") if "train" in e]
    assert losses[-1] < 0.5 * losses[0], losses
    assert events_of(events, "metrics")[-1]["val"]["accuracy"] > 0.5
    weights = torch.load(tmp_path / "bf16" / "snapshot_2.0.pt", weights_only=True)["model"]
    assert {tensor.dtype for tensor in weights.values()} == {torch.float32}

    # A CPU-only job (no GPU visible) cannot train in fp16: the job's error says what to choose instead.
    (tmp_path / "fp16").mkdir()
    status, events, _ = tool_runs.run_module(
        TOOL, *dataset_args(dataset, LENET), "--epochs", 1, "--precision", "fp16", cwd=tmp_path / "fp16",
        env={**ENV, "CUDA_VISIBLE_DEVICES": ""},
    )  # fmt: skip
    assert status == 1
    assert events_of(events, "error")[0]["message"] == (
        "--precision fp16 needs a CUDA GPU, and this job trains on the CPU: choose bf16 (mixed precision that runs "
        "on the CPU) or fp32, or give the job a GPU"
    )


def test_every_solver_lowers_a_loss():
    import argparse

    from digits.tools.torch.optimizers import SOLVERS, make_optimizer

    torch.manual_seed(0)
    x = torch.randn(64, 4)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0])
    for solver in SOLVERS:
        model = torch.nn.Linear(4, 1)
        # TensorFlow's Adadelta (epsilon 1e-8) starts with tiny steps whatever the rate: hence its large one.
        rate = {"ADADELTA": 50.0, "ADAGRAD": 0.5, "ADAGRADDA": 0.5, "FTRL": 0.5}.get(solver, 0.05)
        args = argparse.Namespace(solver=solver, learning_rate=rate, momentum=0.9, rms_decay=0.99)
        optimizer = make_optimizer(args, list(model.parameters()))
        losses = []
        for _ in range(50):
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x)[:, 0], y)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        assert losses[-1] < 0.5 * losses[0], (solver, losses[0], losses[-1])


# Neither defines loss: the default for labels that are not classes is the mean squared error.
REGRESSION = """\
class UserModel(nn.Module):
    def __init__(self, **facts):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 16 * 16, 2)

    def forward(self, x):
        return self.fc(F.relu(self.conv(x / 255.0)).flatten(1))

    def metrics(self, output, y):
        return {"error": (output - y).abs().mean()}
"""
DENOISER = """\
class UserModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 1, 3, padding=1)

    def forward(self, x):
        return self.conv2(F.relu(self.conv1(x)))
"""


def test_regression_and_image_to_image_databases_train(tmp_path):
    """Records of data extensions: float vectors (slopes) and label arrays (clean images), NCHW as the inputs."""
    slopes, denoise = gradient_records()
    reported = {}
    for name, records, source in (("slopes", slopes, REGRESSION), ("denoise", denoise, DENOISER)):
        write_records(tmp_path / f"{name}_db", records)
        network = tmp_path / f"{name}.py"
        network.write_text(source)
        job = tmp_path / name
        job.mkdir()
        status, events, stderr = run_module(
            TOOL, "--network", network, "--train-db", tmp_path / f"{name}_db", "--epochs", 4, "--batch-size", 16,
            *ADAM[:2], "--learning-rate", 0.01, "--aug-noise", 0.01, cwd=job,
        )  # fmt: skip
        assert status == 0, stderr
        losses = [e["train"]["loss"] for e in events_of(events, "metrics") if "train" in e]
        assert losses[-1] < 0.5 * losses[0], (name, losses)
        reported[name] = set(events_of(events, "metrics")[0]["train"])
    assert reported == {"slopes": {"loss", "error"}, "denoise": {"loss"}}
    status, events, _ = run_module(
        TOOL, "--network", tmp_path / "denoise.py", "--train-db", tmp_path / "denoise_db", "--epochs", 1,
        "--aug-flip", "fliplr", cwd=tmp_path / "denoise",
    )  # fmt: skip
    assert status == 1 and "label arrays" in events_of(events, "error")[0]["message"]
