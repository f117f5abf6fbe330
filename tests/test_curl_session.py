"""DIGITS' REST session (../shared/compat.md) typed with curl against a real server in password mode:
a password login keeping the cookie, then the same walk with an API token. No training: a dataset of the
small digits folder, its status, the index and the delete.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest
from helpers import FINISHED, poll
from server import LiveServer

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")

PASSWORD = "fred's password"
ID = r"^\d{8}-\d{6}-[0-9a-f]{4}$"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    jobs = tmp_path_factory.mktemp("curl") / "jobs"
    jobs.mkdir()
    # fred's account made as an admin does it, on the command line.
    command = [sys.executable, "-m", "digits", "users", "--jobs-dir", str(jobs), "add", "fred", "--password-stdin"]
    added = subprocess.run(command, input=PASSWORD + "\n", capture_output=True, text=True, timeout=60)
    assert added.returncode == 0, added.stderr
    server = LiveServer(jobs, env={"DIGITS_AUTH": "password"}).start(timeout=60)
    yield server
    server.stop()


def curl(*args: str) -> tuple[int, str]:
    """``curl -s ARGS``: the HTTP status and the body."""
    done = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    body, _, status = done.stdout.rpartition("\n")
    return int(status), body


def curl_json(*args: str, expect: int = 200) -> dict:
    status, body = curl(*args)
    assert status == expect, body
    return json.loads(body)


def walk_the_session(server: LiveServer, auth: list[str], folder, name: str) -> None:
    """Steps 2, 3 and 6 of the session with ``auth`` (curl's cookie or header options) on every call."""
    created = curl_json(*auth, "-F", "method=folder", "-F", f"folder_train={folder}", "-F", "encoding=png",
                        "-F", "resize_channels=1", "-F", "resize_width=28", "-F", "resize_height=28",
                        "-F", f"dataset_name={name}", f"{server.url}/datasets/images/classification.json")  # fmt: skip
    assert set(created) == {"id", "name", "status"} and created["name"] == name
    job_id = created["id"]
    assert re.match(ID, job_id)

    status = poll(lambda: curl_json(*auth, f"{server.url}/datasets/{job_id}/status"),
                  lambda s: s["status"] in FINISHED, timeout=120, interval=0.3, what=f"dataset {job_id}")  # fmt: skip
    assert status == {"status": "Done", "type": "dataset", "name": name, "error": None}

    dataset = curl_json(*auth, f"{server.url}/datasets/{job_id}.json")
    assert dataset["id"] == job_id and dataset["username"] == "fred"
    assert sum(dataset["entries"].values()) == 300
    index = curl_json(*auth, f"{server.url}/index.json")
    assert "version" in index and index["models"] == []
    assert [(d["id"], d["name"], d["status"]) for d in index["datasets"]] == [(job_id, name, "Done")]

    assert curl_json(*auth, "-X", "DELETE", f"{server.url}/datasets/{job_id}") == {"id": job_id, "deleted": True}
    assert curl_json(*auth, f"{server.url}/index.json")["datasets"] == []


def test_rest_session_with_a_password_login(server, digits_folder, tmp_path):
    cookies = str(tmp_path / "cookies")
    status, _ = curl("-c", cookies, "-F", "username=fred", "-F", "password=not the password", f"{server.url}/login")
    assert status == 401
    status, _ = curl("-c", cookies, "-F", "username=fred", "-F", f"password={PASSWORD}", f"{server.url}/login")
    assert status == 302  # to the home page, the session in the cookie jar
    walk_the_session(server, ["-b", cookies], digits_folder, "digits by cookie")

    status, _ = curl("-b", cookies, "-c", cookies, "-X", "POST", f"{server.url}/logout")
    assert status == 302
    refused = curl_json("-b", cookies, f"{server.url}/index.json", expect=401)
    assert "POST /login with username and password" in refused["errors"]


def test_rest_session_with_an_api_token(server, digits_folder, tmp_path):
    cookies = str(tmp_path / "cookies")
    curl("-c", cookies, "-F", "username=fred", "-F", f"password={PASSWORD}", f"{server.url}/login")
    token = curl_json("-b", cookies, "-F", "label=nightly script", f"{server.url}/account/tokens.json")
    assert token["token"].startswith("dgt_") and token["label"] == "nightly script"

    walk_the_session(server, ["-H", f"Authorization: Bearer {token['token']}"], digits_folder, "digits by token")

    curl_json("-b", cookies, "-X", "POST", f"{server.url}/account/tokens/{token['id']}/revoke.json")
    refused = curl_json("-H", f"Authorization: Bearer {token['token']}", f"{server.url}/index.json", expect=401)
    assert "was revoked" in refused["errors"]
