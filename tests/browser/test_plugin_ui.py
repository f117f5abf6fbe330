"""A user creates a dataset with a data plugin's form, and looks at a segmentation dataset through its view."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image
from plugin_packages import SHIPPED, installed
from ui import login, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

GRADIENTS = "digits_image_gradients_data_plugin"


@pytest.fixture(scope="module")
def gradients_plugin(tmp_path_factory):
    """Installed before the live server starts (module scope comes first), as a user installs then restarts."""
    with installed({GRADIENTS: SHIPPED[GRADIENTS]}, tmp_path_factory.mktemp("plugin")):
        yield


def wait_done(page, job_id: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while (status := page.request.get(f"datasets/{job_id}/status").json()["status"]) != "Done":
        assert status not in ("Error", "Aborted") and time.monotonic() < deadline, status
        time.sleep(0.3)


def test_a_plugin_form_in_the_dataset_page(gradients_plugin, page, live_server):
    login(page)
    page.click("#new-dataset-menu")
    page.click("#new-dataset-image-gradients")
    page.wait_for_url("**/datasets/generic/new/image-gradients")
    form = page.locator("#extension-form")
    assert form.locator("input[name=train_image_count]").input_value() == "1000"
    assert form.locator(".help-icon").count() >= 3  # the plugin's {{ field.tooltip }}

    form.locator("input[name=train_image_count]").fill("200")
    form.locator("input[name=val_image_count]").fill("40")
    form.locator("input[name=image_width]").fill("")
    form.locator("input[name=image_height]").fill("24")
    page.fill("input[name=dataset_name]", "gradients")
    page.click("#create-button")
    # The plugin's own validation, shown with DIGITS' print_errors and its mark_errors on the field's group.
    assert page.locator(".form-errors").inner_text().count("Image Width") == 1
    assert page.locator("#extension-form .form-group.has-error input[name=image_width]").count() == 1
    assert page.locator("#extension-form input[name=train_image_count]").input_value() == "200"

    page.locator("#extension-form input[name=image_width]").fill("16")
    page.click("#create-button")
    page.wait_for_url("**/datasets/*")
    job_id = page.locator("#dataset-page").get_attribute("data-job-id")
    page.wait_for_function("() => document.querySelector('#job-status').innerText.trim() === 'Done'", timeout=120_000)
    assert "Gradients (image-gradients)" in page.locator("#job-extension").inner_text()
    assert page.locator("#job-label-kind").inner_text() == "2 value(s) per sample"
    assert "16 × 24" in page.locator("#job-dimensions").inner_text()
    assert page.locator("#entries-table tr[data-stage=train] .entries").inner_text() == "200"
    assert page.request.get(f"datasets/{job_id}.json").json()["entries"] == {"train": 200, "val": 40}
    page.wait_for_function("() => document.querySelector('#mean-image-box img')?.naturalWidth > 0")
    screenshot(page, "plugin-dataset-page")
    assert not page.js_errors


def write_segmentation_folders(root) -> tuple:
    images, labels = root / "images", root / "labels"
    images.mkdir(parents=True)
    labels.mkdir()
    palette = [0, 0, 0, 255, 40, 40, 40, 200, 40] + [0] * (253 * 3)
    rng = np.random.default_rng(3)
    for i in range(10):
        yy, xx = np.mgrid[:48, :48]
        cx, cy = rng.uniform(14, 34, 2)
        disk = (xx - cx) ** 2 + (yy - cy) ** 2 < 80
        square = (abs(xx - 40) < 5) & (abs(yy - 8) < 5)
        pixels = (60 + 150 * disk + 90 * square + rng.integers(0, 30, (48, 48))).astype(np.uint8)
        Image.fromarray(pixels).convert("RGB").save(images / f"scan{i}.png")
        mask = Image.fromarray((disk * 1 + square * 2).astype(np.uint8), mode="P")
        mask.putpalette(palette)
        mask.save(labels / f"scan{i}.png")
    return images, labels


def test_segmentation_view_shows_overlays_with_opacity(page, live_server, tmp_path):
    images, labels = write_segmentation_folders(tmp_path / "seg")
    login(page)
    fields = dict(dataset_name="scans", feature_folder=str(images), label_folder=str(labels), folder_pct_val="20",
                  class_names="background, disk, square")  # fmt: skip
    job_id = page.request.post("datasets/generic/create/image-segmentation.json", multipart=fields).json()["id"]
    wait_done(page, job_id)

    page.goto(f"datasets/{job_id}")
    page.click(".records-link[data-stage=train]")
    page.wait_for_url("**/records?db=train")
    assert page.locator("#view-title").inner_text() == "Image Segmentation"
    masks = page.locator("img.segmentation-mask")
    assert masks.count() == 8
    page.wait_for_function("() => [...document.querySelectorAll('img.segmentation-mask')].every(i => i.naturalWidth)")
    assert masks.first.evaluate("img => img.naturalWidth") == 48
    assert "disk" in page.locator(".segmentation-header").inner_text()
    assert "square" in page.locator(".segmentation-legend").first.inner_text()

    # The page's slider changes every overlay at once...
    page.locator("#segmentation-opacity").fill("20")
    assert page.locator("#segmentation-opacity-value").inner_text() == "20%"
    assert {masks.nth(i).evaluate("img => img.style.opacity") for i in range(masks.count())} == {"0.2"}
    # ...and the view's own config form sets it (and the colours) for the next page.
    page.select_option("#view-config select[name=colormap]", "paired")
    page.fill("#view-config input[name=opacity]", "80")
    page.click("#apply-view")
    page.wait_for_url(lambda url: "colormap=paired" in url and "opacity=80" in url)
    assert page.locator("img.segmentation-mask").first.evaluate("img => img.style.opacity") == "0.8"
    assert page.locator("#segmentation-opacity").input_value() == "80"
    screenshot(page, "segmentation-view")

    page.select_option("#view-select", "image-image-output")
    page.wait_for_url(lambda url: "view=image-image-output" in url)
    assert page.locator("img.output-image").count() == 8
    assert not page.js_errors
