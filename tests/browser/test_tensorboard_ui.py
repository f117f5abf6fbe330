"""A user visualizes a custom network, opens TensorBoard on one model and on two, compares them; all of it
under a URL prefix. When the server stops, no TensorBoard is left running."""

from __future__ import annotations

import time

import psutil
import pytest
from server import LiveServer, wait_for_status
from ui import login, network_selection, screenshot, set_network

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PREFIX = "/digits"


def tensorboard_processes(marker: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        command = " ".join(process.info["cmdline"] or [])
        if "tensorboard" in command and marker in command:
            found.append(process)
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    jobs = tmp_path_factory.mktemp("tensorboard-ui") / "jobs"
    jobs.mkdir()
    server = LiveServer(jobs, env={"DIGITS_URL_PREFIX": PREFIX}).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def trained(server, digits_folder) -> dict:
    """A dataset and two LeNets trained on it for one epoch."""
    session = server.session()

    class Client:  # what wait_for_status expects: get(path).get_json()
        def get(self, path):
            answer = session.get(server.url + path)
            answer.get_json = answer.json
            return answer

    fields = dict(method="folder", folder_train=str(digits_folder), resize_channels="1", resize_width="28",
                  resize_height="28", folder_pct_val="25", dataset_name="digits")  # fmt: skip
    dataset = session.post(server.url + "/datasets/images/classification.json", data=fields).json()["id"]
    assert wait_for_status(Client(), dataset)["status"] == "Done"
    models = []
    for name in ("lenet A", "lenet B"):
        fields = dict(method="standard", standard_networks="lenet", train_epochs="1", framework="tensorflow",
                      model_name=name, dataset=dataset, batch_size="16")  # fmt: skip
        models.append(session.post(server.url + "/models/images/classification.json", data=fields).json()["id"])
    for model in models:
        assert wait_for_status(Client(), model, timeout=180)["status"] == "Done"
    return {"dataset": dataset, "models": models}


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, base_url=server.url + "/")
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors
    yield page
    context.close()


def test_visualize_shows_the_graph_or_the_users_line(page, trained):
    login(page)
    page.goto("models/images/classification/new")
    page.select_option("select[name=dataset]", trained["dataset"])
    page.click("#customize-lenet")  # LeNet's source in the editor, on the Custom tab
    page.wait_for_function("() => document.querySelector('#custom_network').value.includes('class UserModel')")
    assert "for the images of digits" in page.inner_text("#visualize-controls")

    started = time.monotonic()
    page.click("#visualize-button")
    page.locator("#network-layers li[data-layer=fc2]").wait_for()
    print(f"Visualize answered in {time.monotonic() - started:.1f} s")
    layers = page.locator("#network-layers li").evaluate_all("items => items.map(i => i.dataset.layer)")
    assert [n for n in layers if n in ("conv1", "pool1", "conv2", "pool2", "fc1", "do1", "fc2")] == [
        "conv1", "pool1", "conv2", "pool2", "fc1", "do1", "fc2",
    ]  # fmt: skip
    assert layers[0] == "input" and layers[-1] == "loss"
    conv1 = page.locator("#network-layers li[data-layer=conv1]")
    assert conv1.locator(".layer-shape").inner_text() == "N \u00d7 24 \u00d7 24 \u00d7 20"
    assert conv1.locator(".layer-params").inner_text() == "520 params"
    assert "431,080 trainable parameters" in page.inner_text("#network-total-params")
    assert page.url.endswith("/models/images/classification/new")  # no navigation
    screenshot(page, "visualize-network")

    source = page.input_value("#custom_network")
    assert "noqa" not in source and "fmt:" not in source  # our lint comments stay ours
    set_network(page, source.replace("x = x * 0.0125", "x = x * 0.0125 + undefined_name"))
    line = source.splitlines().index("        x = x * 0.0125") + 1
    page.click("#visualize-button")
    error = page.locator("#network-error-line")
    error.wait_for()
    assert f"line {line}" in error.inner_text() and "undefined_name" in error.locator(".user-source-line").inner_text()
    marked = page.locator(".CodeMirror .cm-error-line pre.CodeMirror-line").inner_text()  # the editor marks the line
    assert marked.strip() == "x = x * 0.0125 + undefined_name"
    assert "NameError" in page.inner_text("#network-error-message")
    assert page.locator("#network-layers").count() == 0
    error.locator("a").click()  # selects the line in the editor
    assert "undefined_name" in network_selection(page)
    screenshot(page, "visualize-network-error")
    assert page.js_errors == []


def wait_for_tensorboard_runs(tensorboard, runs: list[str], answers: list) -> None:
    """TensorBoard's scalars dashboard has loaded: each run in its run selector, the training loss chart, and
    the chart's data, which TensorBoard's page POSTs for (through the app's proxy, past its CSRF check)."""
    for run in runs:
        tensorboard.locator(f"text={run}/.").first.wait_for(timeout=60_000)
    tensorboard.locator("text=train/loss").first.wait_for(timeout=60_000)
    deadline = time.monotonic() + 60
    root = tensorboard.url.split("#")[0]  # this TensorBoard's answers, not another tab's
    while not any(url.startswith(root) and "scalars_multirun" in url and status == 200 for url, status in answers):
        assert time.monotonic() < deadline, [a for a in answers if a[1] >= 400]
        tensorboard.wait_for_timeout(200)
    tensorboard.wait_for_timeout(1000)  # let the charts draw, for the screenshot


def test_tensorboard_for_one_model_then_two(page, trained, server):
    first, second = trained["models"]
    answers: list[tuple[str, int]] = []
    page.context.on("response", lambda response: answers.append((response.url, response.status)))
    login(page)
    page.goto(f"models/{first}")
    with page.context.expect_page() as opened:
        page.click("#tensorboard-button")
    tensorboard = opened.value
    tensorboard.wait_for_url(lambda url: f"{PREFIX}/tensorboard/" in url and url.endswith("/#scalars"), timeout=60_000)
    wait_for_tensorboard_runs(tensorboard, ["lenet A"], answers)
    assert tensorboard.locator("text=lenet B/.").count() == 0
    screenshot(tensorboard, "tensorboard-one-model")

    page.goto("")
    page.click("#models-tab")
    for model in (first, second):
        page.check(f"#job-{model} .job-check")
    with page.context.expect_page() as opened:
        page.click("#tensorboard-selected")
    both = opened.value
    both.wait_for_url(lambda url: f"{PREFIX}/tensorboard/" in url and url.endswith("/#scalars"), timeout=60_000)
    assert both.url.split("/tensorboard/")[1] != tensorboard.url.split("/tensorboard/")[1]
    wait_for_tensorboard_runs(both, ["lenet A", "lenet B"], answers)
    screenshot(both, "tensorboard-two-models")
    assert len(tensorboard_processes(str(server.jobs_dir))) == 2
    assert page.js_errors == []


def test_compare_two_models(page, trained):
    first, second = trained["models"]
    login(page)
    page.click("#models-tab")
    for model in (first, second):
        page.check(f"#job-{model} .job-check")
    with page.context.expect_page() as opened:
        page.click("#compare-selected")
    compare = opened.value
    # The page opens in a new tab: until its scripts load there is no Chart to ask (a ReferenceError ends the wait).
    compare.wait_for_function(
        "() => window.Chart && Chart.getChart('compare-chart')?.data.datasets.every(d => d.data.length > 0)"
    )
    labels = compare.evaluate("() => Chart.getChart('compare-chart').data.datasets.map(d => d.label)")
    assert labels == ["lenet A", "lenet B"]
    assert compare.input_value("#compare-metric") == "val/loss"
    compare.select_option("#compare-metric", "train/loss")
    compare.select_option("#compare-x", "time")
    title = compare.evaluate("() => Chart.getChart('compare-chart').options.scales.x.title.text")
    assert title.startswith("wall time")
    assert compare.evaluate("() => Chart.getChart('compare-chart').data.datasets.every(d => d.data.length > 1)")
    assert "metric=train%2Floss" in compare.url and "x=time" in compare.url
    assert compare.locator("#compare-table tr.compare-model").count() == 2
    screenshot(compare, "compare-two-models")
    assert page.js_errors == []


def test_no_tensorboard_after_the_server_stops(server, trained):
    running = tensorboard_processes(str(server.jobs_dir))
    assert running, "the tests before this one opened TensorBoards"
    server.stop()
    _, alive = psutil.wait_procs(running, timeout=15)
    assert not alive
    assert tensorboard_processes(str(server.jobs_dir)) == []
