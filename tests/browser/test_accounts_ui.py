"""Accounts as people use them: the first admin made through the setup link, a second user made on the
Users page, who sees the admin's job but cannot delete it."""

from __future__ import annotations

import re

import pytest
from helpers import CREATE_DATASET, dataset_fields, poll
from server import LiveServer
from ui import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ADMIN_PASSWORD = "the admin's password"
WILMA_PASSWORD = "wilma's password"


@pytest.fixture
def first_start(tmp_path):
    """A server in password mode on an empty jobs directory: no account yet."""
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    server = LiveServer(jobs, env={"DIGITS_AUTH": "password"}).start()
    yield server
    server.stop()


def setup_link(server: LiveServer) -> str:
    """The one-time link the server printed on its console."""
    log = server.jobs_dir.parent / f"server-{server.port}.log"
    found = poll(lambda: re.search(r"http\S+/setup\?token=\S+", log.read_text()), bool, what="the setup link")
    return found.group(0)


def new_page(browser, server: LiveServer):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=server.url + "/")
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.js_errors = []
    page.on("pageerror", lambda exc: page.js_errors.append(str(exc)))
    return page


def log_in(page, username: str, password: str) -> None:
    page.goto("login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("#login-form button[type=submit]")
    page.wait_for_url("**/")


def test_first_admin_then_a_second_user_who_cannot_delete_the_admins_job(browser, first_start, digits_folder):
    server = first_start
    admin = new_page(browser, server)
    admin.goto(server.url + "/")
    admin.wait_for_url(lambda url: "/login?next=" in url)  # nobody is let in before there is an account

    admin.goto(setup_link(server))
    assert admin.input_value("input[name=username]") == "admin"
    admin.fill("input[name=password]", ADMIN_PASSWORD)
    admin.fill("input[name=confirm]", ADMIN_PASSWORD)
    admin.click("#setup-create")
    admin.wait_for_url("**/")
    admin.click("#nav-logout")
    admin.wait_for_url("**/login")
    log_in(admin, "admin", ADMIN_PASSWORD)

    admin.click("#nav-admin")
    admin.wait_for_url("**/admin/users")
    admin.fill("#add-user-form input[name=username]", "wilma")
    admin.fill("#add-user-form input[name=password]", WILMA_PASSWORD)
    admin.click("#add-user")
    admin.wait_for_url("**/admin/users")
    row = admin.locator("#users tr[data-user=wilma]")
    assert row.locator("td").nth(1).inner_text() == "user" and row.locator("td").nth(2).inner_text() == "enabled"
    assert "Account wilma created." in admin.inner_text("body")
    screenshot(admin, "accounts-admin-users")

    fields = dataset_fields(digits_folder, dataset_name="the admin's digits")
    created = admin.request.post(CREATE_DATASET, multipart=fields)
    assert created.ok, created.text()
    job_id = created.json()["id"]
    poll(lambda: admin.request.get(f"jobs/{job_id}/status").json()["status"], lambda s: s == "Done", timeout=120)

    wilma = new_page(browser, server)  # a new context: her own cookies
    log_in(wilma, "wilma", WILMA_PASSWORD)
    job_row = wilma.locator(f"#job-{job_id}")
    job_row.wait_for()
    assert "the admin's digits" in job_row.inner_text() and job_row.locator(".job-owner").inner_text() == "admin"
    assert wilma.locator("#nav-admin").count() == 0  # no Users page for her

    job_row.locator("a.job-name").click()
    wilma.wait_for_url(f"**/datasets/{job_id}")
    assert wilma.inner_text("#job-name") == "the admin's digits"
    assert wilma.locator("#delete-button").count() == 0  # the page offers her no Delete
    assert wilma.request.get("admin/users.json").status == 403

    # Selected on the home page anyway, the delete is refused and the page says why.
    wilma.goto("")
    wilma.locator(f"#job-{job_id} input.job-check").check()
    wilma.once("dialog", lambda dialog: dialog.accept())
    wilma.click("#delete-selected")
    alert = wilma.locator("#digits-alerts .alert")
    alert.wait_for()
    assert "Could not delete the admin's digits" in alert.inner_text()
    assert "Only admin, who made this job, or an admin may change it" in alert.inner_text()
    screenshot(wilma, "accounts-delete-refused")

    assert wilma.locator(f"#job-{job_id}").count() == 1
    assert admin.request.get(f"datasets/{job_id}.json").json()["name"] == "the admin's digits"
    assert admin.js_errors == [] and wilma.js_errors == []
    admin.context.close()
    wilma.context.close()
