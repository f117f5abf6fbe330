"""A user makes an object detection dataset with its form, sees the boxes on Explore, watches mAP grow on the
model page while DetectNet trains, and finds boxes on Infer One with the threshold slider."""

from __future__ import annotations

import time

import pytest
from detection_data import write_detection_folder
from ui import login, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

MAP_POINTS = """() => {
    const chart = Chart.getChart(document.getElementById('training-chart'));
    const series = chart && chart.data.datasets.find(d => d.label === 'mAP (val)');
    return series ? series.data.map(p => p.y) : [];
}"""


def wait_done(page, url: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while (status := page.request.get(url).json()["status"]) != "Done":
        assert status not in ("Error", "Aborted") and time.monotonic() < deadline, status
        time.sleep(0.3)


def test_boxes_on_explore_and_infer_one_and_the_map_chart_growing(page, live_server, tmp_path):
    login(page)
    write_detection_folder(tmp_path / "train", 300)
    write_detection_folder(tmp_path / "val", 40, held_out=True)
    page.goto("datasets/generic/new/image-object-detection")
    page.fill("input[name=dataset_name]", "digit boxes")
    for stage in ("train", "val"):
        page.fill(f"input[name={stage}_image_folder]", str(tmp_path / stage / "images"))
        page.fill(f"input[name={stage}_label_folder]", str(tmp_path / stage / "labels"))
    page.select_option("select[name=channel_conversion]", "L")
    page.fill("input[name=custom_classes]", "zero, one, seven")
    page.click("#create-button")
    page.wait_for_url("**/datasets/*")
    dataset = page.url.rstrip("/").rsplit("/", 1)[-1]
    wait_done(page, f"datasets/{dataset}/status")
    page.reload()
    page.wait_for_selector("#label-problems-section:not(.d-none)")
    assert "'two' is not among the classes kept" in page.inner_text("#label-problems-table")

    page.goto(f"datasets/{dataset}/records?db=val&size=6")
    boxes = page.locator(".bbox-view .bbox")
    assert boxes.count() >= 3 and boxes.first.is_visible()
    screenshot(page, "detection-explore-boxes")

    fields = dict(method="standard", standard_networks="detectnet", dataset=dataset, train_epochs="8",
                  val_interval="1", model_name="detector", solver_type="ADAM", learning_rate="0.002",
                  use_mean="none", batch_size="32", lr_policy="fixed")  # fmt: skip
    model = page.request.post("models/images/generic.json", multipart=fields).json()["id"]
    page.goto(f"models/{model}")
    # While it trains: two validations plotted, then more by the end.
    page.wait_for_function(f"() => ({MAP_POINTS})().length >= 2", timeout=300_000)
    first = page.evaluate(MAP_POINTS)
    wait_done(page, f"models/{model}/status")
    page.wait_for_function(f"() => ({MAP_POINTS})().length > {len(first)}", timeout=30_000)
    grown = page.evaluate(MAP_POINTS)
    assert len(grown) > len(first) and grown[-1] > grown[0], grown
    screenshot(page, "detection-map-chart")

    # An image with digits of the classes kept (the others are not to be found).
    labels = sorted((tmp_path / "val" / "labels").glob("*.txt"))
    kept = next(
        p for p in labels if {"zero", "one", "seven"} & {line.split()[0] for line in p.read_text().split("\n") if line}
    )
    page.fill("#use-image-path", str(tmp_path / "val" / "images" / f"{kept.stem}.png"))
    page.click("#classify-one-button")
    page.wait_for_url("**/infer_one")

    def shown() -> int:
        return page.locator(".bbox-view .bbox:visible").count()

    for threshold, check in (("0.05", lambda n: n >= 1), ("1", lambda n: n == 0), ("0.05", lambda n: n >= 1)):
        page.fill("#bbox-threshold", threshold)
        page.dispatch_event("#bbox-threshold", "input")
        assert check(shown()), (threshold, shown())
    screenshot(page, "detection-infer-one")
    assert not page.js_errors
