"""Models on plugins' datasets: compat.md step 7 with curl (image gradients, regression), the DICOM plugin's
segmentation trained with the FCN and shown as overlays, and inference through a data plugin's own form."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
from helpers import logged_in_client, poll, wait_done
from PIL import Image
from plugin_packages import (
    TUTORIAL_DIST,
    install,
    uninstall,
    write_dicom_study,
    write_gray_images,
    write_tutorial_plugin,
)
from server import LiveServer

from digits.web.services import services_of

pytestmark = pytest.mark.slow

REGRESSION = """\
class UserModel(Tower):
    @model_property
    def inference(self):
        model = slim.conv2d(self.x / 255.0, 8, [3, 3], scope='conv')
        model = slim.max_pool2d(model, [2, 2], scope='pool')
        return slim.fully_connected(slim.flatten(model), 2, activation_fn=None, scope='fc')

    @model_property
    def loss(self):
        return digits.mse_loss(self.inference, self.y)
"""


@pytest.fixture
def client(app):
    return logged_in_client(app)


def test_compat_step_7_regression_with_curl(shipped_plugins, tmp_path):
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    server = LiveServer(jobs).start()
    cookies = tmp_path / "cookies"

    def curl(*args) -> dict:
        done = subprocess.run(["curl", "-s", "-b", cookies, "-c", cookies, *map(str, args)],
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        return json.loads(done.stdout) if done.stdout.startswith("{") else {}

    def wait(url: str) -> dict:
        return poll(lambda: curl(url), lambda status: status["status"] in ("Done", "Error"), timeout=240, interval=0.5,
                    what=url)  # fmt: skip

    try:
        curl("-X", "POST", f"{server.url}/login", "-F", "username=fred")
        dataset = curl("-X", "POST", f"{server.url}/datasets/generic/create/image-gradients.json",
                       "-F", "dataset_name=gradients")["id"]  # fmt: skip
        assert wait(f"{server.url}/datasets/{dataset}/status")["status"] == "Done"
        network = tmp_path / "model.py"
        network.write_text(REGRESSION)
        model = curl("-X", "POST", f"{server.url}/models/images/generic.json", "-F", "method=custom",
                     "-F", "framework=tensorflow", "-F", f"custom_network=<{network}", "-F", f"dataset={dataset}",
                     "-F", "train_epochs=3", "-F", "model_name=gradients", "-F", "solver_type=ADAM",
                     "-F", "learning_rate=0.003", "-F", "use_mean=none")  # fmt: skip
        assert set(model) == {"id", "name", "status"}, model
        status = wait(f"{server.url}/models/{model['id']}/status")
        assert status["status"] == "Done", status["error"]
        # A steep left-to-right gradient: its x slope is positive and larger than its y slope.
        ramp = np.tile(np.linspace(0, 255, 32), (32, 1)).astype(np.uint8)
        Image.fromarray(ramp).save(tmp_path / "ramp.png")
        answer = curl("-X", "POST", f"{server.url}/models/images/generic/infer_one.json",
                      "-F", f"job_id={model['id']}", "-F", f"image_file=@{tmp_path / 'ramp.png'}")  # fmt: skip
    finally:
        server.stop()
    ((x_slope, y_slope),) = answer["outputs"]["output"]
    assert x_slope > 0.1 and abs(y_slope) < x_slope, answer


def test_dicom_segmentation_trains_the_fcn_and_shows_overlays(shipped_plugins, client, tmp_path):
    study = write_dicom_study(tmp_path / "study", count=24)
    dataset = client.post("/datasets/generic/create/dicom-segmentation.json", data=dict(
        dataset_name="hearts", image_folder=str(study["images"]), contour_folder=str(study["contours"]),
        resize_width="32", resize_height="32", folder_pct_val="25",
    )).get_json()["id"]  # fmt: skip
    wait_done(client, dataset)
    fields = dict(method="standard", standard_networks="fcn", framework="tensorflow", dataset=dataset,
                  train_epochs="15", model_name="fcn", solver_type="ADAM", learning_rate="0.003", batch_size="4",
                  use_mean="none")  # fmt: skip
    created = client.post("/models/images/generic.json", data=fields)
    assert created.status_code == 200, created.get_json()
    model = created.get_json()["id"]
    wait_done(client, model, timeout=300)
    metrics = client.get(f"/models/{model}.json").get_json()["metrics"]
    accuracy = [m["val"]["accuracy"] for m in metrics if "val" in m]
    assert accuracy[-1] > 0.85  # pixels: the disk against the background

    started = client.post("/models/images/generic/infer_db.json", data={"job_id": model, "db": "val"})
    assert started.status_code == 202
    job = started.get_json()
    wait_done(client, job["id"], timeout=120)
    outputs = client.get(job["url"] + ".json").get_json()["outputs"]
    assert len(outputs) >= 4
    scores = np.array(next(iter(outputs.values()))["output"])
    assert scores.shape == (32, 32, 2)
    page = client.get(job["url"] + "?view_extension_id=image-segmentation", headers={"Accept": "text/html"})
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and html.count('class="segmentation-mask') == len(outputs)


def test_tutorial_plugin_dataset_model_and_inference_form(client, make_app, tmp_path):
    plugin = write_tutorial_plugin(tmp_path / "plugin")
    install(plugin, tmp_path)
    try:
        app = make_app(tmp_path / "jobs2")  # a restart finds it
        client = logged_in_client(app)
        images = write_gray_images(tmp_path / "images", count=40)
        dataset = client.post("/datasets/generic/create/tutorial-gray-images.json",
                              data={"dataset_name": "gray", "image_folder": str(images)}).get_json()["id"]  # fmt: skip
        wait_done(client, dataset)
        network = """\
class UserModel(Tower):
    @model_property
    def inference(self):
        return slim.fully_connected(slim.flatten(self.x / 255.0), self.nclasses, activation_fn=None, scope='fc')

    @model_property
    def loss(self):
        return digits.classification_loss(self.inference, tf.reshape(self.y, [-1]))
"""
        fields = dict(method="custom", custom_network=network, framework="tensorflow", dataset=dataset,
                      train_epochs="5", model_name="bright", solver_type="ADAM", learning_rate="0.01",
                      use_mean="none", batch_size="5")  # fmt: skip
        model = client.post("/models/images/generic.json", data=fields).get_json()["id"]
        wait_done(client, model, timeout=120)
        page = client.get(f"/models/{model}").get_data(as_text=True)
        assert 'name="test_image_file"' in page  # the plugin's inference form, in the model page
        bright = sorted(images.glob("*.png"))[1]
        started = client.post("/models/images/generic/infer_extension.json",
                              data={"job_id": model, "test_image_file": str(bright)})  # fmt: skip
        assert started.status_code == 202, started.get_json()
        job = started.get_json()
        wait_done(client, job["id"], timeout=120)
        (output,) = client.get(job["url"] + ".json").get_json()["outputs"].values()
        logits = np.array(output["output"])
        assert logits.shape == (2,) and logits[1] > logits[0]  # bright
        services_of(app).shutdown()
    finally:
        uninstall(TUTORIAL_DIST)
