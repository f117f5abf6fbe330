"""A user downloads a model, makes a pretrained model from it, classifies with it and uploads an archive."""

from __future__ import annotations

import re
import time

import pytest
from sample_images import write_digits_folder
from ui import login, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PRETRAINED_PAGE = re.compile(r".*/pretrained_models/\d{8}-\d{6}-[0-9a-f]{4}$")


def wait_done(page, url: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while (status := page.request.get(url).json()["status"]) != "Done":
        assert status not in ("Error", "Aborted") and time.monotonic() < deadline, status
        time.sleep(0.3)


def test_download_make_pretrained_and_upload(page, live_server, digits_folder, tmp_path):
    login(page)
    fields = dict(method="folder", folder_train=str(digits_folder), resize_channels="1", resize_width="28",
                  resize_height="28", folder_pct_val="25", dataset_name="digits")  # fmt: skip
    dataset = page.request.post("datasets/images/classification.json", multipart=fields).json()["id"]
    wait_done(page, f"datasets/{dataset}/status")
    fields = dict(method="standard", standard_networks="lenet", train_epochs="2", framework="tensorflow",
                  model_name="lenet", dataset=dataset, batch_size="16", lr_policy="fixed")  # fmt: skip
    model = page.request.post("models/images/classification.json", multipart=fields).json()["id"]
    wait_done(page, f"models/{model}/status")

    page.goto(f"models/{model}")
    page.click("#download-button")
    assert page.locator("#download-snapshot option").count() == 2
    page.select_option("#download-snapshot", label="epoch 1")
    with page.expect_download() as download:
        page.click("#download-zip")
    archive = tmp_path / "lenet.zip"
    download.value.save_as(archive)
    assert download.value.suggested_filename == "lenet-epoch-1.zip"
    screenshot(page, "model-download-menu")

    page.fill("#make-pretrained-name", "lenet from the page")
    page.click("#make-pretrained-button")
    page.wait_for_url(PRETRAINED_PAGE)
    assert page.inner_text("#job-name") == "lenet from the page"
    assert page.locator("#pretrained-labels li").count() == 10
    assert "28×28" in page.inner_text("#pretrained-shape")
    assert page.locator("#pretrained-files tr").count() >= 6
    screenshot(page, "pretrained-model-page")

    image = sorted((write_digits_folder(tmp_path / "held-out", per_class=1, skip=30) / "5").glob("*.png"))[0]
    page.set_input_files("#use-image-file", str(image))
    page.click("#classify-one-button")
    page.wait_for_url("**/classify_one")
    assert page.locator("tr.prediction").count() == 5

    page.goto("")
    page.click("#pretrained_models-tab")
    page.wait_for_selector("#pretrained_models-pane.active.show #pretrained_models-table tr.job-row")
    assert page.locator("#pretrained_models-table tr.job-row").count() == 1
    assert page.inner_text("#pretrained_models-table a.job-name") == "lenet from the page"
    assert page.inner_text("#pretrained_models-count") == "1"
    screenshot(page, "home-pretrained-tab")

    page.goto("pretrained_models/new")
    page.set_input_files("#archive", str(archive))
    page.fill("#job_name", "uploaded lenet")
    page.click("#upload-archive-button")
    page.wait_for_load_state()
    screenshot(page, "pretrained-upload")
    page.wait_for_url(PRETRAINED_PAGE)
    assert page.inner_text("#job-name") == "uploaded lenet"
    assert not page.locator("#use-snapshot").is_visible()  # one set of weights: nothing to choose

    page.goto("models/images/classification/new")
    page.click("#network-tab-pretrained")
    assert page.locator("#pretrained-networks-table tbody tr").count() == 2
    screenshot(page, "new-model-pretrained-tab")
    assert not page.js_errors
