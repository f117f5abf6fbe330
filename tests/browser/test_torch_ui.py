"""A PyTorch user's way through the pages: the PyTorch tab, a standard LeNet trained with its chart drawn live,
Visualize and a customized LeNet, the Download menu's PyTorch exports, and Classify One with the layers shown."""

from __future__ import annotations

import time

import pytest
from sample_images import write_digits_folder
from ui import login, screenshot, set_network

pytestmark = [pytest.mark.browser, pytest.mark.slow]

POINTS = "() => Chart.getChart('training-chart')?.data.datasets.reduce((n, d) => n + d.data.length, 0) || 0"


def wait_status(page, url: str, wanted: str = "Done", timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while (status := page.request.get(url).json()["status"]) != wanted:
        assert status not in ("Error", "Aborted") and time.monotonic() < deadline, status
        time.sleep(0.3)


def open_torch_form(page, dataset: str) -> None:
    """The New Model form on the PyTorch tab, for ``dataset``."""
    page.goto("models/images/classification/new")
    page.select_option("select[name=dataset]", dataset)
    assert page.is_hidden("#precision-group")  # mixed precision: the PyTorch tool's option, not TensorFlow's
    page.click("#framework-tab-torch")
    assert page.is_checked("#framework-torch") and page.is_visible("#precision-group")


def create(page, name: str, epochs: str) -> str:
    """Create the model the form describes; its id, once its page is open."""
    page.fill("input[name=train_epochs]", epochs)
    page.fill("input[name=batch_size]", "16")
    page.fill("input[name=model_name]", name)
    page.click("#create-button")
    page.wait_for_selector("#job-status")  # the model's page, not the form again with its errors
    return page.url.rstrip("/").rsplit("/", 1)[1]


def test_pytorch_standard_and_custom_networks_through_the_pages(page, live_server, digits_folder, tmp_path):
    login(page)
    fields = dict(method="folder", folder_train=str(digits_folder), resize_channels="1", resize_width="28",
                  resize_height="28", folder_pct_val="25", dataset_name="digits")  # fmt: skip
    dataset = page.request.post("datasets/images/classification.json", multipart=fields).json()["id"]
    wait_status(page, f"datasets/{dataset}/status")

    # A standard network: the PyTorch tab lists PyTorch's networks only.
    open_torch_form(page, dataset)
    shown = page.locator("#standard-networks-table tr[data-network]:not([hidden])")
    assert set(shown.evaluate_all("rows => rows.map(r => r.dataset.network)")) >= {"lenet", "alexnet"}
    page.check("input[name=standard_networks][value=lenet]")
    screenshot(page, "torch-form-standard")
    model = create(page, "torch lenet", "2")
    wait_status(page, f"models/{model}/status")
    page.wait_for_function("() => document.querySelector('#job-status').innerText.includes('Done')")
    page.wait_for_function(f"() => ({POINTS})() > 0", timeout=30_000, polling=200)
    assert page.evaluate(POINTS) >= 4  # train and val loss and accuracy, an epoch each at least
    assert page.inner_text("#job-framework") == "PyTorch"
    page.click("#download-button")
    exports = page.locator("#export-form button[name=format]")
    assert exports.evaluate_all("buttons => buttons.map(b => b.innerText)") == ["torch.export", "ONNX"]
    assert "model.pt2" in page.inner_text("#export-help")
    screenshot(page, "torch-model-done")
    page.keyboard.press("Escape")

    # Classify One with the layers: PyTorch's leaf modules, activations and weights drawn.
    image = sorted((write_digits_folder(tmp_path / "held-out", per_class=1, skip=30) / "4").glob("*.png"))[0]
    page.set_input_files("#use-image-file", str(image))
    page.check("#use-visualize")
    page.click("#classify-one-button")
    page.wait_for_url("**/classify_one")
    assert page.locator("tr.prediction").count() == 5
    page.wait_for_function("() => [...document.querySelectorAll('img.layer-tiles')].every(i => i.naturalWidth > 0)")
    layers = page.locator("tr.layer").evaluate_all("rows => rows.map(r => r.dataset.layer)")
    assert layers == ["conv1", "conv2", "fc1", "fc2"]
    assert page.locator("img.layer-tiles").count() >= 8  # activations of every layer and weights of each
    screenshot(page, "torch-classify-one-layers")

    # A custom network: Customize copies PyTorch's LeNet; a line edited in the editor; Visualize shows it.
    open_torch_form(page, dataset)
    page.click("#customize-lenet")
    page.wait_for_function("() => document.querySelector('#custom_network').value.includes('nn.Module')")
    source = page.input_value("#custom_network")
    assert "self.conv1 = nn.Conv2d(channels, 20, 5)" in source
    set_network(page, source.replace("self.fc1(x.flatten(1))", "self.fc1(x.flatten(2))"))
    page.click("#visualize-button")
    page.locator("#network-error-line").wait_for()
    assert "self.fc1(x.flatten(2))" in page.inner_text("#network-error-line")
    screenshot(page, "torch-visualize-error")
    narrower = source.replace("nn.Conv2d(channels, 20, 5)", "nn.Conv2d(channels, 16, 5)")
    set_network(page, narrower.replace("nn.Conv2d(20, 50, 5)", "nn.Conv2d(16, 50, 5)"))
    page.click("#visualize-button")
    page.locator("#network-layers").wait_for()
    conv1 = page.locator("#network-layers li[data-layer=conv1]")
    assert "16 × 24 × 24" in conv1.inner_text() and "416 params" in conv1.inner_text()
    assert "layer shapes NCHW" in page.inner_text("#network-total-params")
    screenshot(page, "torch-visualize-custom")
    custom = create(page, "torch custom lenet", "1")
    wait_status(page, f"models/{custom}/status")
    page.wait_for_function("() => document.querySelector('#job-status').innerText.includes('Done')")
    assert page.request.get(f"models/{custom}.json").json()["network"]["name"] == "custom"
    screenshot(page, "torch-custom-done")
    assert page.js_errors == []
