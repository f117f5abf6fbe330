"""A user fills a form while logged out: the login it leads to brings them back to the same form, filled."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser]


def test_dataset_form_survives_the_login(page, live_server, tmp_path):
    page.goto("datasets/images/classification/new")  # reading is open in single-user mode
    page.select_option("select[name=resize_channels]", "1")
    page.fill("input[name=resize_width]", "28")
    page.fill("input[name=resize_height]", "28")
    page.fill("input[name=folder_train]", str(tmp_path / "my digits"))
    page.fill("input[name=folder_pct_val]", "20")
    page.fill("input[name=dataset_name]", "kept across the login")
    page.click("#create-button")

    page.wait_for_url("**/login?**")
    assert "Log in to continue" in page.inner_text("body")
    page.fill("input[name=username]", "fred")
    page.click("button[type=submit]")

    page.wait_for_url("**/datasets/images/classification/new")
    assert page.input_value("input[name=dataset_name]") == "kept across the login"
    assert page.input_value("input[name=folder_train]") == str(tmp_path / "my digits")
    assert page.input_value("input[name=folder_pct_val]") == "20"
    assert (page.input_value("input[name=resize_width]"), page.input_value("input[name=resize_height]")) == ("28", "28")
    assert page.input_value("select[name=resize_channels]") == "1"
    assert page.js_errors == []

    # Kept fields come back only after a login: the server's own answer keeps them, a plain visit starts empty.
    page.click("#create-button")  # logged in now; the folder does not exist: the form comes back with the error
    assert page.input_value("input[name=dataset_name]") == "kept across the login"
    page.goto("datasets/images/classification/new")
    assert page.input_value("input[name=dataset_name]") == ""
