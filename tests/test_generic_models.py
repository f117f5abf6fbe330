"""Generic models (New Model > Images > Other): the seed's auto-encoder on an image-processing dataset,
its outputs as JSON (compat step 7's shape) and through the image output view."""

from __future__ import annotations

import io

import numpy as np
import pytest
from helpers import wait_done
from PIL import Image
from sample_images import write_digits_folder
from seed_networks import AUTOENCODER

pytestmark = pytest.mark.slow

AUTOENCODER_FIXED = AUTOENCODER.replace("tf.reshape(_x,", "tf.reshape(model,")


@pytest.fixture
def processing_dataset(logged_in, tmp_path):
    """Inputs and targets are the same digits (an auto-encoder learns to copy through its bottleneck)."""
    folder = write_digits_folder(tmp_path / "digits", per_class=12, size=16)
    flat = tmp_path / "flat"
    flat.mkdir()
    for path in folder.glob("*/*.png"):
        (flat / path.name).write_bytes(path.read_bytes())
    fields = dict(dataset_name="copies", feature_folder=str(flat), label_folder=str(flat), folder_pct_val="20",
                  channel_conversion="L")  # fmt: skip
    answer = logged_in.post("/datasets/generic/create/image-processing.json", data=fields)
    assert answer.status_code == 200, answer.get_json()
    dataset = answer.get_json()["id"]
    wait_done(logged_in, dataset)
    return dataset, flat


def test_autoencoder_on_an_image_processing_dataset(logged_in, processing_dataset):
    dataset, images = processing_dataset
    fields = dict(method="custom", custom_network=AUTOENCODER_FIXED, framework="tensorflow", dataset=dataset,
                  train_epochs="3", model_name="auto-encoder", solver_type="ADAM", learning_rate="0.001",
                  use_mean="none", batch_size="8")  # fmt: skip
    created = logged_in.post("/models/images/generic.json", data=fields)
    assert created.status_code == 200, created.get_json()
    model = created.get_json()["id"]
    wait_done(logged_in, model, timeout=180)
    losses = [m["train"]["loss"] for m in logged_in.get(f"/models/{model}.json").get_json()["metrics"] if "train" in m]
    assert losses[-1] < losses[0]

    image = sorted(images.glob("*.png"))[0]
    answer = logged_in.post(
        "/models/images/generic/infer_one.json", data={"job_id": model, "image_file": (open(image, "rb"), image.name)}
    )
    assert answer.status_code == 200, answer.get_json()
    output = np.array(answer.get_json()["outputs"]["output"])
    assert output.shape == (1, 16, 16, 1)  # one image, as big as its input

    page = logged_in.post(
        "/models/images/generic/infer_one",
        data={"job_id": model, "image_path": str(image), "view_extension_id": "image-image-output"},
        headers={"Accept": "text/html"},
    )
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "data:image/png;base64," in html  # the view drew the output image

    listing = "".join(f"{p}\n" for p in sorted(images.glob("*.png"))[:5]).encode()
    many = logged_in.post(
        "/models/images/generic/infer_many.json",
        data={"job_id": model, "image_list": (io.BytesIO(listing), "list.txt")},
    ).get_json()
    assert len(many["outputs"]) == 5 and many["errors"] == []
    first = np.array(next(iter(many["outputs"].values()))["output"])
    assert first.shape == (16, 16, 1)
    decoded = Image.fromarray(np.clip(first[:, :, 0], 0, 255).astype(np.uint8))
    assert decoded.size == (16, 16)
