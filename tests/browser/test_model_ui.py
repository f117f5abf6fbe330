"""A user trains a model through the form, watches the chart grow, aborts, resumes, and the curve carries on."""

from __future__ import annotations

import time

import pytest
from ui import login, screenshot, set_network

pytestmark = [pytest.mark.browser, pytest.mark.slow]

POINTS = "() => Chart.getChart('training-chart')?.data.datasets.reduce((n, d) => n + d.data.length, 0) || 0"
MAX_EPOCH = """() => Math.max(0, ...Chart.getChart('training-chart').data.datasets
    .flatMap(d => d.data.map(p => (typeof p === 'object' ? p.x : 0))))"""


def wait_until(page, expression: str, timeout: float = 120):
    page.wait_for_function(expression, timeout=timeout * 1000, polling=200)


def test_train_abort_resume_through_the_pages(page, live_server, digits_folder):
    login(page)
    fields = dict(method="folder", folder_train=str(digits_folder), resize_channels="1", resize_width="28",
                  resize_height="28", folder_pct_val="25", dataset_name="digits")  # fmt: skip
    dataset = page.request.post("datasets/images/classification.json", multipart=fields).json()
    deadline = time.monotonic() + 60
    while page.request.get(f"datasets/{dataset['id']}/status").json()["status"] != "Done":
        assert time.monotonic() < deadline
        time.sleep(0.2)

    page.goto("")
    page.click("#new-model-menu")
    page.click("#new-image-classification-model")
    page.wait_for_url("**/models/images/classification/new")
    page.select_option("select[name=dataset]", dataset["id"])
    page.fill("input[name=train_epochs]", "60")
    page.fill("input[name=batch_size]", "8")
    page.check("input[name=standard_networks][value=lenet]")
    page.fill("input[name=model_name]", "lenet from the form")
    page.click("#create-button")
    page.wait_for_url(lambda url: "/models/" in url and "/new" not in url)

    wait_until(page, f"() => ({POINTS})() > 0")
    first = page.evaluate(POINTS)
    wait_until(page, f"() => ({POINTS})() > {first}")  # the chart gains points while it trains
    wait_until(page, "() => document.querySelectorAll('#snapshot-table tbody tr').length >= 2")
    page.click("#abort-button")
    wait_until(page, "() => document.querySelector('#job-status').innerText.includes('Aborted')")
    stopped_at = page.evaluate(MAX_EPOCH)
    points_before = page.evaluate(POINTS)
    screenshot(page, "model-aborted")

    page.click("#resume-button")
    wait_until(page, f"() => ({MAX_EPOCH})() > {stopped_at} + 1")
    assert page.evaluate(POINTS) > points_before  # the same chart carries on
    screenshot(page, "model-resumed")
    page.click("#abort-button")
    wait_until(page, "() => document.querySelector('#job-status').innerText.includes('Aborted')")
    model_id = page.url.rstrip("/").rsplit("/", 1)[1]
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#delete-button")
    page.wait_for_url(live_server.url + "/")
    assert page.request.get(f"models/{model_id}.json").status == 404
    assert page.js_errors == []


def test_customized_network_error_shows_the_users_line(page, live_server, digits_folder):
    login(page)
    fields = dict(method="folder", folder_train=str(digits_folder), resize_channels="1", resize_width="28",
                  resize_height="28", folder_pct_val="25", dataset_name="digits")  # fmt: skip
    dataset = page.request.post("datasets/images/classification.json", multipart=fields).json()
    deadline = time.monotonic() + 60
    while page.request.get(f"datasets/{dataset['id']}/status").json()["status"] != "Done":
        assert time.monotonic() < deadline
        time.sleep(0.2)

    page.goto("models/images/classification/new")
    page.select_option("select[name=dataset]", dataset["id"])
    page.click("#customize-lenet")  # copies LeNet's source into the editor, on the Custom tab
    page.wait_for_function("() => document.querySelector('#custom_network').value.includes('class UserModel')")
    source = page.input_value("#custom_network")
    set_network(page, source.replace("x = x * 0.0125", "x = x * 0.0125 + undefined_name"))
    page.fill("input[name=train_epochs]", "1")
    page.fill("input[name=model_name]", "my lenet")
    page.click("#create-button")
    page.wait_for_url(lambda url: "/models/" in url and "/new" not in url)
    wait_until(page, "() => document.querySelector('#job-status').innerText.includes('Error')")
    user_line = page.locator("#job-error-user-line")
    user_line.wait_for()
    assert "undefined_name" in user_line.inner_text()
    screenshot(page, "model-user-error")
    assert page.js_errors == []
