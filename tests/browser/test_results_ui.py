"""The "Use the model" result pages as a user sees them: Top N's images per class, Classify Many's thumbnails,
mistakes filter, sort and confusion-matrix cells, and "Test the dataset" offering only the databases there are."""

from __future__ import annotations

import time

import pytest
from sample_images import write_digits_folder
from server import LiveServer
from ui import login, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ALL_IMAGES_LOADED = "sel => [...document.querySelectorAll(sel)].every(i => i.complete && i.naturalWidth > 0)"


def wait_done(page, url: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while (status := page.request.get(url).json()["status"]) != "Done":
        assert status not in ("Error", "Aborted") and time.monotonic() < deadline, status
        time.sleep(0.3)


@pytest.fixture(scope="module")
def trained(browser, tmp_path_factory, digits_folder):
    """A live server with a LeNet trained for 2 epochs on a dataset with a validation but no test database,
    a browser context logged in to it, and a labelled list of 3 held-out digits per class."""
    root = tmp_path_factory.mktemp("results-ui")
    (root / "jobs").mkdir()
    server = LiveServer(root / "jobs").start()
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, base_url=server.url + "/")
    page = context.new_page()
    page.set_default_timeout(20_000)
    login(page)
    fields = dict(method="folder", folder_train=str(digits_folder), resize_channels="1", resize_width="28",
                  resize_height="28", folder_pct_val="25", dataset_name="digits")  # fmt: skip
    dataset = page.request.post("datasets/images/classification.json", multipart=fields).json()["id"]
    wait_done(page, f"datasets/{dataset}/status")
    fields = dict(method="standard", standard_networks="lenet", train_epochs="2", framework="tensorflow",
                  model_name="lenet", dataset=dataset, batch_size="16", lr_policy="fixed")  # fmt: skip
    model = page.request.post("models/images/classification.json", multipart=fields).json()["id"]
    wait_done(page, f"models/{model}/status")
    held_out = write_digits_folder(root / "held-out", per_class=3, skip=30)
    listing = root / "list.txt"
    listing.write_text("".join(f"{p} {p.parent.name}\n" for p in sorted(held_out.glob("*/*.png"))))
    page.close()
    yield context, model, listing
    context.close()
    server.stop()


@pytest.fixture
def page(trained):
    context, _, _ = trained
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors
    yield page
    page.close()


def test_top_n_shows_a_grid_of_images_per_class(trained, page):
    _, model, listing = trained
    page.goto(f"models/{model}")
    page.click("#use-top-tab")
    assert "confusion matrix" not in page.inner_text("#use-top")  # it promises only what Top N shows
    page.set_input_files("#use-top-list", str(listing))
    page.fill("#use-top-n", "3")
    page.click("#top_n-button")
    page.wait_for_url("**/top_n")
    assert page.locator(".top-n-class").count() == 10
    for card in page.locator(".top-n-class").all():
        assert card.locator("img.thumbnail-image").count() == 3
    page.wait_for_function(ALL_IMAGES_LOADED, arg="#top-n img")
    first = page.locator(".top-n-class").first.locator(".top-n-image").first
    assert "%" in first.inner_text() and ".png" in first.inner_text()  # the file and how sure the model is
    screenshot(page, "top-n-images")
    assert not page.js_errors


def test_test_the_dataset_offers_only_its_databases(trained, page):
    _, model, _ = trained
    page.goto(f"models/{model}")
    page.click("#use-db-tab")
    offered = page.locator("#use-db-stage option").evaluate_all("options => options.map(o => o.value)")
    assert offered == ["val"]
    # A form from before the database went away (or a hand-made request) asks for the test database.
    page.evaluate("() => document.querySelector('#use-db-stage').add(new Option('test', 'test', true, true))")
    page.click("#classify-db-button")
    assert "Cannot test the dataset" in page.inner_text("h1")
    message = page.inner_text("#error-message")
    assert "digits has no test database" in message and "validation" in message
    assert not page.js_errors


def test_classify_many_filters_mistakes_sorts_and_opens_matrix_cells(trained, page):
    _, model, _ = trained
    page.goto(f"models/{model}")
    page.click("#use-db-tab")
    page.click("#classify-db-button")  # the validation database, in the background
    page.wait_for_selector("#classifications", timeout=120_000)  # the page reloads when the job is done
    rows = page.locator("#classifications tr.classification")
    total = rows.count()
    assert total == page.request.get(page.url + ".json").json()["count"] == 80  # every record, none cut off
    # Named by the file each record came from, pictured by the record itself.
    assert page.locator("#classifications code").first.inner_text().endswith(".png")
    page.locator("#classifications").scroll_into_view_if_needed()  # thumbnails load as they come into view
    page.wait_for_function(ALL_IMAGES_LOADED, arg="#classifications tbody tr:nth-child(-n+5) img")

    page.select_option("#sort-by", "confidence-asc")
    shown = page.locator("#classifications tr.classification:not([hidden])")
    confidences = shown.evaluate_all("rows => rows.map(r => Number(r.dataset.confidence))")
    assert confidences == sorted(confidences) and len(confidences) == total

    page.check("#only-mistakes")
    mistakes = page.locator("#classifications tr.table-danger").count()
    assert shown.count() == mistakes > 0  # a 2-epoch LeNet still makes some
    assert shown.evaluate_all("rows => rows.every(r => r.classList.contains('table-danger'))")
    screenshot(page, "classify-many-mistakes")

    cell = page.locator("#confusion-matrix td.matrix-cell").first
    truth, predicted, count = cell.get_attribute("data-truth"), cell.get_attribute("data-predicted"), cell.inner_text()
    cell.click()
    assert not page.is_checked("#only-mistakes")
    assert shown.count() == int(count)
    pairs = shown.evaluate_all("rows => rows.map(r => [r.dataset.truth, r.dataset.predicted])")
    assert all(pair == [truth, predicted] for pair in pairs)
    assert f"true {truth}, predicted {predicted}" in page.inner_text("#cell-filter")
    page.click("#cell-filter-clear")
    assert shown.count() == total
    assert not page.js_errors


def test_the_snapshot_table_shows_each_snapshots_size(trained, page):
    _, model, _ = trained
    page.goto(f"models/{model}")
    page.wait_for_selector("#snapshot-table tr.snapshot")
    sizes = page.locator("#snapshot-table tr.snapshot td:last-child").all_inner_texts()
    assert len(sizes) == 2 and all(size.strip().endswith("B") for size in sizes), sizes
