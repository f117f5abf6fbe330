"""A user creates a dataset through the form, watches it build, reads its page and explores it."""

from __future__ import annotations

import time

import pytest
from sample_images import write_digits_folder
from ui import login, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def progress_values(page, task_id: str, until_status: str = "Done", timeout: float = 120) -> list[int]:
    """The task's progress bar, read every 50 ms until the job's status badge says ``until_status``."""
    seen: list[int] = []
    deadline = time.monotonic() + timeout
    read = f"""() => {{
        const bar = document.querySelector("li[data-task-id={task_id}] [role=progressbar]");
        return [bar && Number(bar.getAttribute("aria-valuenow")), document.querySelector("#job-status").innerText];
    }}"""
    while time.monotonic() < deadline:
        value, status = page.evaluate(read)
        if value is not None:
            seen.append(value)
        if status.strip() == until_status:
            return seen
        time.sleep(0.05)
    raise AssertionError(f"job did not reach {until_status}; progress seen {seen}")


def test_create_dataset_through_the_form(page, live_server, tmp_path):
    folder = write_digits_folder(tmp_path / "digits")  # all 1,797 of scikit-learn's digits
    login(page)
    page.click("#new-dataset-menu")
    page.click("#new-image-classification")
    page.wait_for_url("**/datasets/images/classification/new")

    page.select_option("select[name=resize_mode]", "crop")
    page.wait_for_function(
        """() => { const img = document.querySelector("img[src*='resize-example']");
                   return img.src.includes('mode=crop') && img.complete && img.naturalWidth > 0; }"""
    )

    page.select_option("select[name=resize_channels]", "3")
    page.fill("input[name=resize_width]", "256")
    page.fill("input[name=resize_height]", "256")
    page.fill("input[name=folder_train]", str(folder))
    page.fill("input[name=folder_pct_val]", "25")
    page.fill("input[name=dataset_name]", "digits in color")
    page.click("#create-button")
    page.wait_for_url("**/datasets/*")

    seen = progress_values(page, "create_db_train")
    assert any(0 < value < 100 for value in seen), f"progress never seen moving: {sorted(set(seen))}"
    assert seen == sorted(seen), "progress went backwards"
    for task in ("parse_folder", "create_db_train", "create_db_val"):
        assert "Done" in page.locator(f"li[data-task-id={task}]").inner_text()

    job_id = page.locator("#dataset-page").get_attribute("data-job-id")
    dataset = page.request.get(f"datasets/{job_id}.json").json()
    assert dataset["entries"]["train"] + dataset["entries"]["val"] == 1797
    totals = page.evaluate(
        "() => Chart.getChart('distribution-chart').data.datasets.map(d => d.data.reduce((a, b) => a + b, 0))"
    )
    assert sorted(totals) == sorted(dataset["entries"].values())
    page.wait_for_function("() => document.querySelector('#mean-image-box img')?.naturalWidth > 0")
    screenshot(page, "dataset-page")

    page.click("#job-name")  # inline rename, saved with Enter
    page.fill("#job-name + input", "digits, renamed")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelector('#job-name').innerText === 'digits, renamed'")
    assert page.request.get(f"datasets/{job_id}.json").json()["name"] == "digits, renamed"

    page.click("#entries-table a[href*='db=train']")
    page.wait_for_url(lambda url: "/explore" in url and "db=train" in url)
    images = page.locator("#explore-grid figure img")
    assert images.count() == 24
    assert all(images.nth(i).evaluate("img => img.naturalWidth === 256") for i in range(images.count()))
    page.select_option("#label-select", "3")
    page.wait_for_url(lambda url: "label=3" in url)
    captions = page.locator("#explore-grid figcaption").all_inner_texts()
    assert captions and set(captions) == {"3"}
    screenshot(page, "explore-label-3")
    assert page.js_errors == []


def test_home_page_updates_live(page, live_server, digits_folder):
    login(page)
    assert page.locator("#datasets-table tr.job-row").count() == 0
    fields = dict(method="folder", folder_train=str(digits_folder), resize_channels="1", resize_width="28",
                  resize_height="28", dataset_name="made by a script")  # fmt: skip
    created = page.request.post("datasets/images/classification.json", multipart=fields).json()
    row = page.locator(f"#job-{created['id']}")
    row.wait_for()
    assert "made by a script" in row.inner_text()
    page.wait_for_function(f"() => document.querySelector('#job-{created['id']}').innerText.includes('Done')")
    screenshot(page, "home-live")
    page.request.delete(f"datasets/{created['id']}")
    row.wait_for(state="detached")
    assert page.js_errors == []
