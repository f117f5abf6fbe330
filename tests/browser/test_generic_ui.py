"""A user runs a generic model from its page and picks the view that shows its outputs, with its own form."""

from __future__ import annotations

import time

import pytest
from sample_images import write_digits_folder
from seed_networks import AUTOENCODER
from ui import login, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def wait_done(page, url: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while (status := page.request.get(url).json()["status"]) != "Done":
        assert status not in ("Error", "Aborted") and time.monotonic() < deadline, status
        time.sleep(0.3)


def test_infer_one_through_the_image_output_view(page, live_server, tmp_path):
    login(page)
    digits = write_digits_folder(tmp_path / "digits", per_class=8, size=16)
    flat = tmp_path / "flat"
    flat.mkdir()
    for path in digits.glob("*/*.png"):
        (flat / path.name).write_bytes(path.read_bytes())
    fields = dict(dataset_name="copies", feature_folder=str(flat), label_folder=str(flat), folder_pct_val="20",
                  channel_conversion="L")  # fmt: skip
    dataset = page.request.post("datasets/generic/create/image-processing.json", multipart=fields).json()["id"]
    wait_done(page, f"datasets/{dataset}/status")
    network = AUTOENCODER.replace("tf.reshape(_x,", "tf.reshape(model,")
    fields = dict(method="custom", custom_network=network, dataset=dataset, train_epochs="2", model_name="copier",
                  solver_type="ADAM", learning_rate="0.001", use_mean="none", batch_size="8")  # fmt: skip
    model = page.request.post("models/images/generic.json", multipart=fields).json()["id"]
    wait_done(page, f"models/{model}/status")

    page.goto(f"models/{model}")
    assert page.inner_text("#use-one-tab") == "Infer One"
    page.select_option("#view-one", "image-image-output")
    assert page.locator("#use-one .view-config[data-view='image-image-output']").is_visible()
    page.fill("#use-image-path", str(sorted(flat.glob("*.png"))[0]))
    page.click("#classify-one-button")
    page.wait_for_url("**/infer_one")
    assert "Image output" in page.inner_text("body")
    outputs = page.locator("#inference-outputs tr.inference-output img")
    assert outputs.count() >= 1
    page.wait_for_function(
        "() => [...document.querySelectorAll('#inference-outputs img')].every(i => i.naturalWidth > 0)"
    )
    screenshot(page, "generic-infer-one-image-output")
    assert not page.js_errors
