"""A user tells runs apart and works with them: the home table, Compare, the training log, delete, clone, classify."""

from __future__ import annotations

import pytest
import requests
from helpers import FINISHED, dataset_fields, lenet_fields, poll
from server import LiveServer
from ui import login, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]
KEYS = "(rows) => rows.map(r => r.dataset.key)"  # the parameter of each row of Compare's table


@pytest.fixture(scope="module")
def trained(tmp_path_factory, digits_folder):
    """A live server with one digits dataset and two LeNets trained on it with different batch sizes and epochs."""
    jobs = tmp_path_factory.mktemp("jobs")
    server = LiveServer(jobs).start()
    session = requests.Session()
    session.post(f"{server.url}/login", data={"username": "fred"}, headers={"Accept": "application/json"})

    def post(path: str, fields: dict) -> dict:
        return session.post(f"{server.url}/{path}", data=fields, headers={"Accept": "application/json"}).json()

    def finished(job_id: str, timeout: float) -> str:
        read = lambda: session.get(f"{server.url}/jobs/{job_id}/status").json()  # noqa: E731
        return poll(read, lambda s: s["status"] in FINISHED, timeout=timeout, interval=0.5, what=job_id)["status"]

    dataset = post("datasets/images/classification.json", dataset_fields(digits_folder, folder_pct_val="25"))["id"]
    assert finished(dataset, 60) == "Done"
    models = {
        "small batches": post("models/images/classification.json",
                              lenet_fields(dataset, model_name="small batches", batch_size="16", train_epochs="2")),
        "large batches": post("models/images/classification.json",
                              lenet_fields(dataset, model_name="large batches", batch_size="128", train_epochs="1")),
    }  # fmt: skip
    for model in models.values():
        assert finished(model["id"], 300) == "Done"
    yield server, dataset, {name: m["id"] for name, m in models.items()}
    server.stop()


@pytest.fixture
def user(browser, trained):
    server = trained[0]
    context = browser.new_context(viewport={"width": 1400, "height": 900}, base_url=server.url + "/")
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors
    login(page)
    yield page
    context.close()


def column(page, key: str) -> list[str]:
    """The visible cells of the models table's column ``key``, top to bottom."""
    index = page.locator("#models-table thead th").evaluate_all(
        f"(ths) => ths.findIndex(th => th.dataset.sort === '{key}')"
    )
    return page.locator(f"#models-table tbody tr.job-row td:nth-child({index + 1})").all_inner_texts()


def test_home_table_sorts_and_filters(user, trained):
    page = user
    page.click("#models-tab")
    headers = page.locator("#models-table thead th").all_inner_texts()
    for title in ("Name", "Dataset", "Network", "Epochs", "Duration", "Best val acc."):
        assert any(h.strip().startswith(title) for h in headers), headers
    assert column(page, "dataset") == ["digits", "digits"]
    assert column(page, "network") == ["lenet", "lenet"]
    assert sorted(column(page, "epochs")) == ["1", "2"]
    accuracies = [float(text.rstrip("%")) for text in column(page, "best_val_accuracy")]
    assert all(0 < a <= 100 for a in accuracies)
    assert all(text.strip() != "\u2014" for text in column(page, "duration"))

    page.click("#models-table th[data-sort=epochs]")  # numbers: most first
    assert column(page, "epochs") == ["2", "1"]
    assert column(page, "name") == ["small batches", "large batches"]
    page.click("#models-table th[data-sort=epochs]")
    assert column(page, "epochs") == ["1", "2"]
    page.click("#models-table th[data-sort=best_val_accuracy]")
    shown = [float(text.rstrip("%")) for text in column(page, "best_val_accuracy")]
    assert shown == sorted(shown, reverse=True)
    screenshot(page, "home-models-table")

    page.fill("#job-filter", "large")
    page.wait_for_function("() => document.querySelectorAll('#models-table tr.job-row').length === 1")
    assert column(page, "name") == ["large batches"]
    assert page.inner_text("#models-count") == "1/2"
    page.fill("#job-filter", "no such run")
    page.wait_for_selector("#models-pane .empty-filtered:not(.d-none)")
    page.fill("#job-filter", "")
    page.wait_for_function("() => document.querySelectorAll('#models-table tr.job-row').length === 2")

    page.click("#datasets-tab")
    entries = page.request.get(f"datasets/{trained[1]}.json").json()["entries"]
    assert page.locator("#datasets-table td.job-entries").all_inner_texts() == [f"{sum(entries.values()):,}"]
    assert page.locator("#datasets-table td.job-size").inner_text().endswith("iB")
    assert page.js_errors == []


def test_compare_puts_parameters_side_by_side(user, trained):
    page = user
    models = trained[2]
    page.goto("models/compare?" + "&".join(f"job_id={i}" for i in models.values()) + "&metric=val/accuracy")
    page.wait_for_selector("#parameters-table tr.parameter")
    differs = page.locator("#parameters-table tr.parameter-differs").evaluate_all(
        "(rows) => rows.map(r => r.dataset.key)"
    )
    assert {"batch_size", "epochs"} <= set(differs)
    assert "dataset" not in differs and "network" not in differs
    best = page.locator("#parameters-table tr[data-key=best_val_accuracy] td").all_inner_texts()
    assert all(text.endswith("%") for text in best)
    # The chart's accuracy is in percent, as on the model pages.
    top = page.evaluate(
        "() => Math.max(...Chart.getChart('compare-chart').data.datasets.flatMap(d => d.data.map(p => p.y)))"
    )
    assert 1 < top <= 100
    assert page.evaluate("() => Chart.getChart('compare-chart').scales.x.max") == 2
    screenshot(page, "compare-parameters")
    page.check("#differences-only")
    keys = page.locator("#parameters-table tr.parameter").evaluate_all(KEYS)
    assert "dataset" not in keys and "batch_size" in keys
    assert page.js_errors == []


def test_cpu_training_log_reads_clean(user, trained):
    page = user
    page.goto(f"models/{trained[2]['small batches']}")
    log = page.inner_text("#log-tail")
    assert "epoch 2 val: loss" in log and "accuracy" in log
    assert "cuInit" not in log and "absl::InitializeLog" not in log
    full = page.request.get(f"jobs/{trained[2]['small batches']}/log/train").text()
    assert "cuInit" not in full and "oneDNN" not in full
    assert page.evaluate("() => Chart.getChart('training-chart').scales.x.max") == 2
    page.locator("#log-card").scroll_into_view_if_needed()
    screenshot(page, "model-cpu-training-log")
    assert page.js_errors == []


def test_delete_clone_and_classify_another(user, trained, digits_folder):
    page = user
    _, dataset, models = trained
    page.goto(f"datasets/{dataset}")
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message) or dialog.dismiss())
    page.click("#delete-button")  # two models use it: said at once, nothing to confirm
    alert = page.locator("#digits-alerts .alert")
    alert.wait_for()
    assert "cannot be deleted" in alert.inner_text() and "small batches" in alert.inner_text()
    assert dialogs == []

    page.goto(f"clone/{models['small batches']}")
    page.wait_for_url("**/models/images/classification/new?clone=*")
    assert page.input_value("input[name=model_name]") == "small batches (clone)"

    first, second = sorted(digits_folder.rglob("*.png"))[:2]
    page.goto(f"models/{models['small batches']}")
    page.fill("#use-image-path", str(first))
    page.click("#classify-one-button")
    page.wait_for_url("**/classify_one")
    assert first.name in page.inner_text("#classify-one-result")
    page.fill("#another-image-path", str(second))  # another image, from the result page itself
    page.click("#classify-another-button")
    page.wait_for_function(f"() => document.querySelector('#classify-one-result').innerText.includes({second.name!r})")
    assert page.locator("#predictions tr.prediction").count() > 0
    assert page.js_errors == []
