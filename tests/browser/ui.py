"""What browser tests do often: log in, keep a screenshot."""

from __future__ import annotations

from pathlib import Path

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def login(page, username: str = "fred") -> None:
    page.goto("login")
    page.fill("input[name=username]", username)
    page.click("button[type=submit]")
    page.wait_for_url("**/")


def set_network(page, source: str) -> None:
    """Put ``source`` in the model form's network editor, as typing would (the textarea follows the editor)."""
    page.evaluate("(source) => document.querySelector('#custom_network').codeEditor.setValue(source)", source)


def network_selection(page) -> str:
    """The text selected in the model form's network editor."""
    return page.evaluate("() => document.querySelector('#custom_network + .CodeMirror').CodeMirror.getSelection()")
