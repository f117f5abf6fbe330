"""PyTorch models through the app, typed with curl against a real server: DIGITS' REST steps 4 and 5 with
``framework=torch`` (../shared/compat.md), the form's errors that name what to fix, a TensorFlow and a PyTorch
model on the Compare page, and the accuracy the PyTorch LeNet reaches on scikit-learn's digits."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import pytest
from detection_data import write_detection_folder
from helpers import DIGITS_DATASET, FINISHED, LENET_MODEL, poll
from sample_images import write_digits_folder
from server import LiveServer

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")

CLASSIFICATION = "/models/images/classification.json"


class Curl:
    """``curl -s`` against ``server`` with a cookie jar, logged in as DIGITS' scripts do (single-user mode)."""

    def __init__(self, server: LiveServer, cookies: str):
        self.server, self.cookies = server, cookies
        self.call("-F", "username=fred", "/login", expect=302)

    def call(self, *args: str, expect: int = 200) -> dict | str:
        """``curl -s ARGS`` (the last one a path on the server); the answer's JSON, or its text when not JSON.
        Fails unless the HTTP status is ``expect``."""
        *options, path = args
        command = ["curl", "-s", "-b", self.cookies, "-c", self.cookies, "-w", "\n%{http_code}", *options]
        done = subprocess.run([*command, self.server.url + path], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        body, _, status = done.stdout.rpartition("\n")
        assert int(status) == expect, body
        try:
            return json.loads(body)
        except ValueError:
            return body

    def post(self, path: str, fields: dict, expect: int = 200) -> dict:
        """POST ``fields`` as curl's ``--form-string name=value``: ``-F`` would read a ``;`` in a network's source
        as the start of its own options."""
        fields = [a for name, value in fields.items() for a in ("--form-string", f"{name}={value}")]
        return self.call(*fields, path, expect=expect)

    def wait(self, job_id: str, timeout: float) -> dict:
        """Poll ``/jobs/<id>/status`` until the job finishes; returns the status answer."""
        return poll(lambda: self.call(f"/jobs/{job_id}/status"), lambda s: s["status"] in FINISHED, timeout=timeout,
                    interval=0.5, what=f"job {job_id} to finish")  # fmt: skip

    def dataset(self, folder, name: str) -> str:
        """A digits dataset of ``folder`` (25% for validation), Done; returns its id."""
        fields = {**DIGITS_DATASET, "folder_train": folder, "folder_pct_val": "25", "dataset_name": name}
        job_id = self.post("/datasets/images/classification.json", fields)["id"]
        assert self.wait(job_id, timeout=120)["status"] == "Done"
        return job_id

    def train(self, fields: dict, timeout: float = 300) -> dict:
        """Create a classification model from ``fields``, wait until it is Done; returns its JSON."""
        job_id = self.post(CLASSIFICATION, fields)["id"]
        status = self.wait(job_id, timeout=timeout)
        model = self.call(f"/models/{job_id}.json")
        assert status["status"] == "Done", model["error"]
        return model


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    jobs = tmp_path_factory.mktemp("torch-models") / "jobs"
    jobs.mkdir()
    server = LiveServer(jobs).start(timeout=60)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def curl(server, tmp_path_factory) -> Curl:
    return Curl(server, str(tmp_path_factory.mktemp("cookies") / "cookies.txt"))


@pytest.fixture(scope="module")
def dataset(curl, digits_folder) -> str:
    return curl.dataset(digits_folder, "digits")


@pytest.fixture(scope="module")
def torch_model(curl, dataset) -> dict:
    """Step 4 with framework=torch: a PyTorch LeNet, 2 epochs on the small digits, snapshots seen while it trains."""
    fields = {**LENET_MODEL, "framework": "torch", "train_epochs": "2", "model_name": "torch lenet",
              "dataset": dataset, "random_seed": "1"}  # fmt: skip
    created = curl.post(CLASSIFICATION, fields)
    assert set(created) == {"id", "name", "status"}
    poll(lambda: curl.call(f"/models/{created['id']}.json")["snapshots"], bool, timeout=120, interval=0.3,
         what="a snapshot while training")  # fmt: skip
    assert curl.wait(created["id"], timeout=300)["status"] == "Done"
    return curl.call(f"/models/{created['id']}.json")


@pytest.fixture(scope="module")
def tensorflow_model(curl, dataset) -> dict:
    fields = {**LENET_MODEL, "train_epochs": "2", "model_name": "tf lenet", "dataset": dataset, "random_seed": "1"}
    return curl.train(fields)


def test_rest_step_4_trains_with_the_pytorch_tool(curl, torch_model):
    assert torch_model["status"] == "Done" and torch_model["snapshots"] == [1, 2]
    assert [s["path"] for s in torch_model["snapshot_files"]] == ["snapshot_1.0.pt", "snapshot_2.0.pt"]
    assert torch_model["tasks"][0]["tool"] == "digits.tools.torch.main"
    assert torch_model["framework"] == "PyTorch"
    assert any("accuracy" in m.get("val", {}) for m in torch_model["metrics"])
    listed = {m["id"]: m for m in curl.call("/index.json")["models"]}
    assert listed[torch_model["id"]]["framework"] == "PyTorch"


def test_rest_step_5_classifies_one_image_with_the_pytorch_model(curl, torch_model, digits_folder):
    image = next((digits_folder / "7").glob("*.png"))
    answer = curl.call("-F", f"job_id={torch_model['id']}", "-F", f"image_file=@{image}",
                       "/models/images/classification/classify_one.json")  # fmt: skip
    predictions = answer["predictions"]
    assert len(predictions) == 5 and {label for label, _ in predictions} <= {str(d) for d in range(10)}
    assert 0 <= predictions[-1][1] <= predictions[0][1] <= 100


def test_customize_copies_the_source_of_the_chosen_framework(curl):
    torch_lenet = curl.call("/models/networks/lenet.py?framework=torch")
    assert "class UserModel(nn.Module)" in torch_lenet
    assert "class UserModel(Tower)" in curl.call("/models/networks/lenet.py")
    assert "No standard network 'googlenet' in PyTorch" in curl.call("/models/networks/googlenet.py?framework=torch",
                                                                     expect=404)["errors"]  # fmt: skip
    page = curl.call("/models/images/classification/new")
    assert 'id="framework-tab-tensorflow"' in page and 'id="framework-tab-torch"' in page


def test_form_errors_name_what_to_fix(curl, dataset, tensorflow_model, tmp_path):
    def errors(fields: dict, path: str = CLASSIFICATION) -> dict:
        answer = curl.post(path, {**LENET_MODEL, "framework": "torch", "dataset": dataset, **fields}, expect=400)
        return answer["errors"]

    [unknown] = errors({"framework": "caffe"})["framework"]
    assert unknown == "'caffe' is not a valid choice; use one of: tensorflow, torch."
    assert errors({"standard_networks": "googlenet"})["standard_networks"] == [
        "PyTorch has no standard network 'googlenet'; it has: lenet, alexnet, resnet."
    ]
    tf_source = curl.call("/models/networks/lenet.py")
    [wrong_class] = errors({"method": "custom", "custom_network": tf_source})["custom_network"]
    assert "a PyTorch UserModel must subclass torch.nn.Module" in wrong_class
    assert "(a TensorFlow network: choose framework tensorflow)" in wrong_class

    # A TensorFlow model's snapshot offered as the start of a PyTorch model: as a previous model, as a file.
    [previous] = errors({"method": "previous", "previous_networks": tensorflow_model["id"]})["previous_networks"]
    assert previous == (
        "Model tf lenet was trained with TensorFlow: a PyTorch model cannot start from its weights. "
        "Choose framework tensorflow, or start from a PyTorch model."
    )
    checkpoint = f"{tensorflow_model['directory']}/{tensorflow_model['snapshot_files'][-1]['path']}"
    torch_source = curl.call("/models/networks/lenet.py?framework=torch")
    fields = {"method": "custom", "custom_network": torch_source, "custom_network_snapshot": checkpoint}
    [snapshot] = errors(fields)["custom_network_snapshot"]
    assert snapshot.startswith(f"Snapshot {checkpoint} was trained with TensorFlow: a PyTorch model cannot start")

    # A detection dataset's model needs the TensorFlow tool's --detection, which the PyTorch tool lacks.
    root = tmp_path / "boxes"
    write_detection_folder(root / "train", 6)
    write_detection_folder(root / "val", 3, held_out=True)
    boxes = curl.post("/datasets/generic/create/image-object-detection.json", {
        "dataset_name": "boxes", "train_image_folder": root / "train" / "images",
        "train_label_folder": root / "train" / "labels", "val_image_folder": root / "val" / "images",
        "val_label_folder": root / "val" / "labels", "channel_conversion": "L",
    })["id"]  # fmt: skip
    assert curl.wait(boxes, timeout=120)["status"] == "Done"
    fcn = curl.call("/models/networks/fcn.py?framework=torch")
    fields = {"method": "custom", "custom_network": fcn, "standard_networks": "fcn", "dataset": boxes,
              "use_mean": "none", "batch_size": "2"}  # fmt: skip
    assert errors(fields, "/models/images/generic.json")["framework"] == [
        "The PyTorch training tool (digits.tools.torch.main) has no --detection (for an object detection dataset), "
        "which this model needs. Choose framework tensorflow."
    ]
    assert {m["name"] for m in curl.call("/index.json")["models"]} <= {"torch lenet", "tf lenet"}


def test_mixed_precision_is_a_pytorch_option_and_fp16_needs_a_gpu(curl, dataset):
    page = curl.call("/models/images/classification/new")
    assert '<div class="framework-only" data-frameworks="torch" id="precision-group">' in page
    fields = {**LENET_MODEL, "framework": "torch", "dataset": dataset, "model_name": "torch bf16", "train_epochs": "2",
              "random_seed": "1", "solver_type": "ADAM", "learning_rate": "0.001"}  # fmt: skip
    model = curl.train({**fields, "precision": "bf16"})
    assert model["tasks"][0]["args"][-2:] == ["--precision", "bf16"]
    losses = [m["train"]["loss"] for m in model["metrics"] if "train" in m]
    assert losses[-1] < 0.7 * losses[0], losses

    no_gpu = curl.post(CLASSIFICATION, {**fields, "precision": "fp16", "select_gpu_count": "0"}, expect=400)
    assert no_gpu["errors"]["precision"] == [
        "fp16 mixed precision needs a GPU, and this job gets none: choose bf16 (which runs on the CPU) or fp32, "
        "or ask for a GPU."
    ]
    tensorflow = curl.post(CLASSIFICATION, {**fields, "precision": "bf16", "framework": "tensorflow"}, expect=400)
    assert tensorflow["errors"]["framework"] == [
        "The TensorFlow training tool (digits.tools.tensorflow.main) has no --precision, which this model needs. "
        "Choose framework torch."
    ]


def test_compare_shows_a_tensorflow_and_a_pytorch_model(curl, tensorflow_model, torch_model):
    ids = [tensorflow_model["id"], torch_model["id"]]
    compared = curl.call(f"/models/compare.json?job_id={ids[0]}&job_id={ids[1]}")
    models = {m["id"]: m for m in compared["models"]}
    assert list(models) == ids
    assert [models[i]["parameters"]["framework"] for i in ids] == ["TensorFlow", "PyTorch"]
    for model in models.values():
        curves = {name for point in model["points"] for name in point["values"]}
        assert {"train/loss", "val/loss", "val/accuracy"} <= curves, model["name"]
        assert [p["epoch"] for p in model["points"] if "val/accuracy" in p["values"]] == [1, 2]
    assert {"train/loss", "val/accuracy"} <= set(compared["metrics"])


@pytest.mark.slow
def test_pytorch_lenet_accuracy_on_all_digits(curl, tmp_path_factory):
    """The TensorFlow accuracy test's settings (tests/test_training.py): all 1,797 digits, 25% for validation,
    SGD at 0.01 with the step policy, batch 16, 30 epochs, seed 1."""
    folder = write_digits_folder(tmp_path_factory.mktemp("all-digits"))
    dataset = curl.dataset(folder, "all digits")
    fields = {**LENET_MODEL, "framework": "torch", "dataset": dataset, "model_name": "torch accuracy",
              "train_epochs": "30", "solver_type": "SGD", "learning_rate": "0.01", "lr_policy": "step",
              "batch_size": "16", "random_seed": "1"}  # fmt: skip
    started = time.monotonic()
    model = curl.train(fields, timeout=900)
    accuracy = [m["val"]["accuracy"] for m in model["metrics"] if "accuracy" in m.get("val", {})]
    assert len(accuracy) == 30 and model["snapshots"][-1] == 30
    print(f"PyTorch LeNet: validation accuracy {accuracy[-1]:.4f} after 30 epochs, {time.monotonic() - started:.0f} s")
    assert accuracy[-1] >= 0.975, accuracy
