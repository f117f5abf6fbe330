"""A user classifies one image with visualizations and a labelled list from a trained model's page."""

from __future__ import annotations

import time

import pytest
from sample_images import write_digits_folder
from ui import login, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def wait_done(page, url: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while (status := page.request.get(url).json()["status"]) != "Done":
        assert status not in ("Error", "Aborted") and time.monotonic() < deadline, status
        time.sleep(0.3)


def test_classify_one_and_many_from_the_model_page(page, live_server, digits_folder, tmp_path):
    login(page)
    fields = dict(method="folder", folder_train=str(digits_folder), resize_channels="1", resize_width="28",
                  resize_height="28", folder_pct_val="25", dataset_name="digits")  # fmt: skip
    dataset = page.request.post("datasets/images/classification.json", multipart=fields).json()["id"]
    wait_done(page, f"datasets/{dataset}/status")
    fields = dict(method="standard", standard_networks="lenet", train_epochs="3", framework="tensorflow",
                  model_name="lenet", dataset=dataset, batch_size="16", lr_policy="fixed")  # fmt: skip
    model = page.request.post("models/images/classification.json", multipart=fields).json()["id"]
    wait_done(page, f"models/{model}/status")
    held_out = write_digits_folder(tmp_path / "held-out", per_class=3, skip=30)

    page.goto(f"models/{model}")
    assert page.locator("#use-snapshot option").count() == 3  # one per epoch, the last first
    page.set_input_files("#use-image-file", str(sorted((held_out / "4").glob("*.png"))[0]))
    page.check("#use-visualize")
    page.click("#classify-one-button")
    page.wait_for_url("**/classify_one")
    assert page.locator("tr.prediction").count() == 5
    page.wait_for_function("() => [...document.querySelectorAll('img.layer-tiles')].every(i => i.naturalWidth > 0)")
    layers = page.locator("tr.layer").evaluate_all("rows => rows.map(r => r.dataset.layer)")
    assert layers[:4] == ["conv1", "pool1", "conv2", "pool2"]
    assert page.locator("img.layer-tiles").count() >= 8  # activations of every layer, weights of four
    assert page.evaluate("() => document.querySelectorAll('canvas.histogram').length") >= 8
    assert page.evaluate("() => Chart.getChart(document.querySelector('canvas.histogram')) !== undefined")
    screenshot(page, "classify-one-visualizations")

    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{p} {p.parent.name}\n" for p in sorted(held_out.glob("*/*.png"))))
    page.goto(f"models/{model}")
    page.click("#use-many-tab")
    page.set_input_files("#use-many-list", str(listing))
    page.click("#classify_many-button")
    page.wait_for_url("**/classify_many")
    matrix = page.locator("#confusion-matrix")
    assert matrix.locator("tbody tr, tr:has(th + td)").count() >= 10
    counts = matrix.locator("td").evaluate_all("cells => cells.map(c => Number(c.innerText) || 0)")
    assert sum(counts) == 30
    assert page.locator("#classifications tr.table-success, #classifications tr.table-danger").count() == 30
    assert "%" in page.inner_text("#top1-accuracy")
    screenshot(page, "classify-many-confusion-matrix")
    assert not page.js_errors
