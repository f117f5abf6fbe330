"""Accounts against a real server in password mode: each way in that an attacker would try is refused,
and the same request made by the right user succeeds.

One server (``admin`` from ``DIGITS_ADMIN_PASSWORD``, the users ``fred`` and ``wilma``) serves most tests.
Failed logins are limited per address (every test calls from 127.0.0.1), so the limit itself and the
first start's setup link are tried on servers of their own.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from helpers import CREATE_DATASET, FINISHED, dataset_fields, lenet_fields, poll
from server import LiveServer, free_port

ADMIN_PASSWORD = "admin password 1"
PASSWORDS = {"fred": "fred's password", "wilma": "wilma's password"}
JSON = {"Accept": "application/json"}


def login(server: LiveServer, name: str, password: str) -> requests.Session:
    """A session logged in as ``name`` (the cookie kept), as a script does it with DIGITS' form fields."""
    session = requests.Session()
    answer = session.post(server.url + "/login", data={"username": name, "password": password}, headers=JSON)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"username": name}
    return session


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def new_token(session: requests.Session, server: LiveServer, label: str = "script") -> dict:
    answer = session.post(server.url + "/account/tokens.json", data={"label": label})
    assert answer.status_code == 200, answer.text
    return answer.json()


def error_of(answer: requests.Response) -> str:
    """The message of a refusal (``errors`` as a string, or the form's errors joined)."""
    errors = answer.json()["errors"]
    return errors if isinstance(errors, str) else " ".join(m for field in errors.values() for m in field)


def wait_finished(session: requests.Session, server: LiveServer, job_id: str, timeout: float = 120) -> dict:
    return poll(lambda: session.get(f"{server.url}/jobs/{job_id}/status").json(),
                lambda status: status["status"] in FINISHED, timeout=timeout, interval=0.2,
                what=f"job {job_id} to finish")  # fmt: skip


def make_dataset(session: requests.Session, server: LiveServer, folder: Path, name: str) -> str:
    answer = session.post(server.url + CREATE_DATASET, data=dataset_fields(folder, dataset_name=name))
    assert answer.status_code == 200, answer.text
    job_id = answer.json()["id"]
    assert wait_finished(session, server, job_id)["status"] == "Done"
    return job_id


def server_log(server: LiveServer) -> str:
    return (server.jobs_dir.parent / f"server-{server.port}.log").read_text()


def start_server(root: Path, **env: str) -> LiveServer:
    jobs = root / "jobs"
    jobs.mkdir(parents=True)
    return LiveServer(jobs, env={"DIGITS_AUTH": "password", **env}).start(timeout=60)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server with ``admin`` made from DIGITS_ADMIN_PASSWORD; lists over 2 images classify in the background."""
    server = start_server(tmp_path_factory.mktemp("accounts"), DIGITS_ADMIN_PASSWORD=ADMIN_PASSWORD,
                          DIGITS_INFERENCE_SYNC_LIMIT="2")  # fmt: skip
    yield server
    server.stop()


@pytest.fixture(scope="module")
def admin(server) -> requests.Session:
    admin = login(server, "admin", ADMIN_PASSWORD)
    for name, password in PASSWORDS.items():
        added = admin.post(server.url + "/admin/users.json", data={"username": name, "password": password})
        assert added.status_code == 200, added.text
    return admin


@pytest.fixture(scope="module")
def fred(server, admin) -> requests.Session:
    return login(server, "fred", PASSWORDS["fred"])


@pytest.fixture(scope="module")
def wilma(server, admin) -> requests.Session:
    return login(server, "wilma", PASSWORDS["wilma"])


@pytest.fixture(scope="module")
def freds_dataset(server, fred, digits_folder) -> str:
    return make_dataset(fred, server, digits_folder, "fred's digits")


# -- who may run code ---------------------------------------------------------------------------------------------
def test_visualize_network_needs_a_login_and_runs_nothing_without_one(server, fred, tmp_path):
    marker = tmp_path / "ran"
    # Python that leaves a file behind when it runs: the way to see whether the server ran it.
    source = f"open({str(marker)!r}, 'w').close()\n\nclass UserModel(Tower):\n    pass\n"
    fields = {"custom_network": source, "input_shape": "28,28,1"}
    for headers in ({}, bearer("dgt_not-a-token")):
        refused = requests.post(server.url + "/models/visualize-network.json", data=fields, headers=headers)
        assert refused.status_code == 401
        assert "Log in first" in error_of(refused) or "API token" in error_of(refused)
    time.sleep(1)
    assert not marker.exists(), "the posted Python ran without a login"

    # The same request from a logged-in user is built in a child process: the file appears.
    fred.post(server.url + "/models/visualize-network.json", data=fields)
    assert marker.exists()


# -- who is asking ------------------------------------------------------------------------------------------------
def test_a_script_without_a_token_is_told_how_to_log_in(server, digits_folder):
    for method, path in (("GET", "/index.json"), ("POST", CREATE_DATASET)):
        answer = requests.request(method, server.url + path, data=dataset_fields(digits_folder))
        assert answer.status_code == 401
        assert "POST /login with username and password" in error_of(answer)
        assert "Authorization: Bearer" in error_of(answer)
    # A browser is sent to the login page, which brings it back where it was going.
    page = requests.get(server.url + "/datasets/images/classification/new", allow_redirects=False)
    assert page.status_code == 302
    assert page.headers["Location"].startswith("/login?next=/datasets/images/classification/new")


def test_a_wrong_password_is_refused(server, admin):
    for password in ("not fred's password", ""):
        session = requests.Session()
        answer = session.post(server.url + "/login", data={"username": "fred", "password": password}, headers=JSON)
        assert answer.status_code == 401
        assert "Wrong user name or password" in error_of(answer)
        assert session.get(server.url + "/index.json").status_code == 401
    page = requests.post(server.url + "/login", data={"username": "nobody", "password": "a password"})
    assert page.status_code == 401 and "Wrong user name or password" in page.text


def test_a_username_field_identifies_nobody(server, admin, wilma, digits_folder):
    fields = dataset_fields(digits_folder, dataset_name="named fred", username="fred")
    refused = requests.post(server.url + CREATE_DATASET, data=fields)
    assert refused.status_code == 401
    index = admin.get(server.url + "/index.json").json()
    assert "named fred" not in [d["name"] for d in index["datasets"]]

    # Logged in as wilma, the field does not make the job fred's.
    created = wilma.post(server.url + CREATE_DATASET, data=fields)
    assert created.status_code == 200, created.text
    job_id = created.json()["id"]
    wait_finished(wilma, server, job_id)
    index = admin.get(server.url + "/index.json").json()
    assert [d["username"] for d in index["datasets"] if d["id"] == job_id] == ["wilma"]
    assert wilma.delete(f"{server.url}/datasets/{job_id}").status_code == 200


def test_a_disabled_account_is_refused_everywhere(server, admin):
    added = admin.post(server.url + "/admin/users.json", data={"username": "barney", "password": "barney's password"})
    assert added.status_code == 200, added.text
    barney = login(server, "barney", "barney's password")
    token = new_token(barney, server)["token"]
    assert admin.post(server.url + "/admin/users/barney.json", data={"action": "disable"}).status_code == 200

    answer = requests.post(server.url + "/login", data={"username": "barney", "password": "barney's password"},
                           headers=JSON)  # fmt: skip
    assert answer.status_code == 401 and "disabled (ask an admin)" in error_of(answer)
    assert barney.get(server.url + "/index.json").status_code == 401  # the session from before
    with_token = requests.get(server.url + "/index.json", headers=bearer(token))
    assert with_token.status_code == 401 and "ask an admin to enable the account" in error_of(with_token)

    assert admin.post(server.url + "/admin/users/barney.json", data={"action": "enable"}).status_code == 200
    assert requests.get(server.url + "/index.json", headers=bearer(token)).status_code == 200
    login(server, "barney", "barney's password")


def test_unknown_and_revoked_tokens_are_refused(server, fred, digits_folder):
    for token in ("dgt_" + "x" * 43, "nonsense"):
        answer = requests.get(server.url + "/index.json", headers=bearer(token))
        assert answer.status_code == 401
        assert "make a new one on your account page" in error_of(answer)

    token = new_token(fred, server, label="nightly")
    account = requests.get(server.url + "/account.json", headers=bearer(token["token"]))
    assert account.status_code == 200 and account.json()["user"]["name"] == "fred"
    listed = {t["id"]: t for t in account.json()["tokens"]}
    assert listed[token["id"]]["label"] == "nightly" and listed[token["id"]]["last_used"] is not None
    assert "token" not in listed[token["id"]], "a token's secret is shown once only"

    assert fred.post(f"{server.url}/account/tokens/{token['id']}/revoke.json").json() == {"revoked": token["id"]}
    refused = requests.post(
        server.url + CREATE_DATASET, data=dataset_fields(digits_folder), headers=bearer(token["token"])
    )
    assert refused.status_code == 401 and "was revoked" in error_of(refused)


def test_tokens_are_stored_hashed(server, fred):
    secret = new_token(fred, server)["token"]
    stored = (server.jobs_dir / "accounts.db").read_bytes()
    assert secret.encode() not in stored
    with sqlite3.connect(server.jobs_dir / "accounts.db") as db:
        hashes = [row[0] for row in db.execute("SELECT token_hash FROM tokens")]
        passwords = [row[0] for row in db.execute("SELECT password_hash FROM users")]
    assert hashlib.sha256(secret.encode()).hexdigest() in hashes
    assert all(p.startswith("scrypt:") for p in passwords)
    assert not any(password.encode() in stored for password in PASSWORDS.values())


def test_the_login_redirect_stays_on_this_site(server, admin):
    for target in ("/\\evil.com", "//evil.com", "http://evil.com", "https://evil.com/", "\\\\evil.com", "javascript:x"):
        answer = requests.post(server.url + "/login", allow_redirects=False,
                               data={"username": "fred", "password": PASSWORDS["fred"], "next": target})  # fmt: skip
        assert answer.status_code == 302
        assert answer.headers["Location"] == "/", f"next={target!r} led to {answer.headers['Location']}"
    fields = {"username": "fred", "password": PASSWORDS["fred"], "next": "/account?tab=tokens"}
    local = requests.post(server.url + "/login", data=fields, allow_redirects=False)
    assert local.headers["Location"] == "/account?tab=tokens"


# -- who may change a job -----------------------------------------------------------------------------------------
def test_reading_is_open_to_every_logged_in_user(server, wilma, freds_dataset):
    index = wilma.get(server.url + "/index.json").json()
    assert [(d["name"], d["username"]) for d in index["datasets"] if d["id"] == freds_dataset] == [
        ("fred's digits", "fred")
    ]
    assert wilma.get(f"{server.url}/datasets/{freds_dataset}.json").json()["name"] == "fred's digits"
    assert wilma.get(f"{server.url}/datasets/{freds_dataset}").status_code == 200


def test_another_user_cannot_change_the_owners_job(server, wilma, fred, freds_dataset):
    url = f"{server.url}/datasets/{freds_dataset}"
    for answer in (
        wilma.put(f"{server.url}/jobs/{freds_dataset}", json={"name": "wilma's now"}),
        wilma.post(f"{server.url}/jobs/{freds_dataset}", data={"notes": "mine"}),
        wilma.post(url + "/abort"),
        wilma.delete(url),
        wilma.delete(f"{server.url}/jobs/{freds_dataset}"),
    ):
        assert answer.status_code == 403
        assert "Only fred, who made this job, or an admin may change it" in error_of(answer)
    job = fred.get(url + ".json").json()
    assert job["name"] == "fred's digits" and job["status"] == "Done" and not job.get("notes")


def test_the_owner_and_an_admin_can_change_a_job(server, fred, admin, digits_folder):
    job_id = make_dataset(fred, server, digits_folder, "to rename")
    renamed = fred.put(f"{server.url}/jobs/{job_id}", json={"name": "renamed by fred"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "renamed by fred"
    by_admin = admin.put(f"{server.url}/jobs/{job_id}", json={"name": "renamed by the admin"})
    assert by_admin.status_code == 200 and by_admin.json()["name"] == "renamed by the admin"
    assert admin.post(f"{server.url}/datasets/{job_id}/abort").status_code == 200
    assert admin.delete(f"{server.url}/datasets/{job_id}").json() == {"id": job_id, "deleted": True}
    assert fred.get(f"{server.url}/datasets/{job_id}.json").status_code == 404

    own = make_dataset(fred, server, digits_folder, "to delete")
    assert fred.delete(f"{server.url}/datasets/{own}").status_code == 200
    assert own not in [d["id"] for d in fred.get(server.url + "/index.json").json()["datasets"]]


@pytest.mark.slow
def test_a_background_inference_job_belongs_to_who_started_it(server, fred, wilma, freds_dataset, digits_folder):
    started = fred.post(server.url + "/models/images/classification.json", data=lenet_fields(freds_dataset))
    assert started.status_code == 200, started.text
    model = started.json()["id"]
    assert wait_finished(fred, server, model, timeout=300)["status"] == "Done"
    listed = "".join(f"{path}\n" for path in sorted(digits_folder.glob("*/*.png"))[:3])  # over the limit of 2
    answer = fred.post(server.url + "/models/images/classification/classify_many.json",
                       data={"job_id": model}, files={"image_list": ("list.txt", listed)})  # fmt: skip
    assert answer.status_code == 202, answer.text
    inference = answer.json()["id"]

    for refused in (wilma.post(f"{server.url}/jobs/{inference}/abort"), wilma.delete(f"{server.url}/jobs/{inference}")):
        assert refused.status_code == 403
        assert "Only fred, who made this job" in error_of(refused)
    assert wilma.get(f"{server.url}/inference/{inference}.json").status_code == 200  # reading is open
    wait_finished(fred, server, inference)
    assert fred.delete(f"{server.url}/jobs/{inference}").status_code == 200


# -- bootstrap, limits, the command line --------------------------------------------------------------------------
def test_admin_password_from_the_environment_makes_admin(server):
    account = login(server, "admin", ADMIN_PASSWORD).get(server.url + "/account.json").json()
    assert account["user"]["name"] == "admin" and account["user"]["is_admin"] is True
    assert f"Log in at {server.url}/login" in server_log(server)
    assert "setup?token" not in server_log(server)
    assert requests.get(server.url + "/setup").status_code == 404


def test_failed_logins_are_limited(tmp_path):
    server = start_server(tmp_path, DIGITS_ADMIN_PASSWORD=ADMIN_PASSWORD)
    try:
        wrong = {"username": "admin", "password": "guess"}
        statuses = [requests.post(server.url + "/login", data=wrong, headers=JSON).status_code for _ in range(10)]
        assert statuses == [401] * 10
        limited = requests.post(server.url + "/login", data=wrong, headers=JSON)
        assert limited.status_code == 429
        assert "Too many failed logins" in limited.text and "wait a minute" in limited.text
        # Even the right password waits: guessing on cannot find it.
        right = requests.post(server.url + "/login", data={"username": "admin", "password": ADMIN_PASSWORD})
        assert right.status_code == 429
    finally:
        server.stop()


def test_a_first_start_prints_a_setup_link_that_makes_the_admin_once(tmp_path):
    server = start_server(tmp_path)
    try:
        link = poll(lambda: re.search(r"(\S+/setup\?token=(\S+))", server_log(server)), bool, what="the setup link")
        url, token = link.groups()
        assert url == f"{server.url}/setup?token={token}"
        assert requests.get(server.url + "/index.json").status_code == 401

        for wrong in ("", "?token=not-the-token", f"?token={token[:-1]}"):
            refused = requests.get(server.url + "/setup" + wrong, headers=JSON)
            assert refused.status_code == 403 and "setup link the server printed" in error_of(refused)
        mallory = {"username": "mallory", "password": "a password", "confirm": "a password"}
        stolen = requests.post(server.url + "/setup", data={"token": "guess", **mallory})
        assert stolen.status_code == 403
        short = requests.post(url, data={"token": token, "username": "boss", "password": "short", "confirm": "short"})
        assert short.status_code == 400 and "at least 8 characters" in short.text

        session = requests.Session()
        page = session.get(url)
        assert page.status_code == 200 and "Create the admin account" in page.text
        made = session.post(server.url + "/setup", allow_redirects=False,
                            data={"token": token, "username": "boss", "password": "boss password",
                                  "confirm": "boss password"})  # fmt: skip
        assert made.status_code == 302 and made.headers["Location"] == "/"
        user = session.get(server.url + "/account.json").json()["user"]
        assert (user["name"], user["is_admin"]) == ("boss", True)

        # Once only: the link is gone, and nobody else becomes admin through it.
        assert requests.get(url).status_code == 404
        again = requests.post(server.url + "/setup", data={"token": token, **mallory})
        assert again.status_code == 404
        users = session.get(server.url + "/admin/users.json").json()["users"]
        assert [u["name"] for u in users] == ["boss"]
        login(server, "boss", "boss password")
    finally:
        server.stop()


def test_no_auth_is_refused_on_an_address_others_reach(tmp_path):
    jobs = tmp_path / "jobs"
    started = subprocess.run(
        [sys.executable, "-m", "digits", "--no-auth", "--host", "0.0.0.0", "-p", str(free_port()),
         "--jobs-dir", str(jobs)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert started.returncode != 0
    assert "--no-auth (DIGITS_AUTH=none) serves loopback addresses only, not 0.0.0.0" in started.stderr
    assert "Use accounts, or --host 127.0.0.1" in started.stderr


def users_command(server: LiveServer, *args: str, password: str | None = None) -> subprocess.CompletedProcess:
    """``python -m digits --jobs-dir ... users ARGS`` on the server's jobs directory, as an admin types it."""
    return subprocess.run(
        [sys.executable, "-m", "digits", "users", "--jobs-dir", str(server.jobs_dir), *args],
        input=None if password is None else password + "\n", capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_the_users_command_manages_the_servers_accounts(server, admin):
    added = users_command(server, "add", "betty", "--password-stdin", password="betty's password")
    assert added.returncode == 0 and added.stdout.strip() == "created betty"
    login(server, "betty", "betty's password")
    made_admin = users_command(server, "add", "pebbles", "--admin", "--password-stdin", password="pebbles password")
    assert made_admin.stdout.strip() == "created pebbles (admin)"
    assert login(server, "pebbles", "pebbles password").get(server.url + "/admin/users.json").status_code == 200

    taken = users_command(server, "add", "betty", "--password-stdin", password="another password")
    assert taken.returncode == 2 and "already an account 'betty'" in taken.stderr
    short = users_command(server, "add", "bamm", "--password-stdin", password="short")
    assert short.returncode == 2 and "at least 8 characters" in short.stderr

    assert users_command(server, "passwd", "betty", "--password-stdin", password="betty's new one").returncode == 0
    login(server, "betty", "betty's new one")
    assert users_command(server, "disable", "betty").stdout.strip() == "betty disabled"
    listed = users_command(server, "list").stdout.splitlines()
    assert "betty  (disabled)" in listed and "pebbles  (admin)" in listed and "admin  (admin)" in listed
    refused = requests.post(server.url + "/login", data={"username": "betty", "password": "betty's new one"})
    assert refused.status_code == 401
    assert users_command(server, "enable", "betty").returncode == 0
    login(server, "betty", "betty's new one")
    assert users_command(server, "remove", "betty").stdout.strip() == "removed betty"
    assert "betty" not in [u["name"] for u in admin.get(server.url + "/admin/users.json").json()["users"]]
    missing = users_command(server, "remove", "betty")
    assert missing.returncode == 2 and "no account 'betty'" in missing.stderr


def test_logging_out_ends_the_session_on_the_server(server, admin):
    session = login(server, "admin", ADMIN_PASSWORD)
    copied = requests.Session()
    copied.cookies.update(session.cookies)
    assert copied.get(server.url + "/index.json").status_code == 200
    assert session.post(server.url + "/logout", headers=JSON).json() == {"logged_out": True}
    # A copy of the cookie (a stolen one, another tab's) is refused as well, not only the browser's own.
    assert copied.get(server.url + "/index.json").status_code == 401
    assert admin.get(server.url + "/index.json").status_code == 200  # the admin's other session goes on


def test_a_new_password_ends_the_other_sessions(server, admin):
    added = admin.post(server.url + "/admin/users.json", data={"username": "betty", "password": "betty pass 1"})
    assert added.status_code == 200, added.text
    laptop, desktop = login(server, "betty", "betty pass 1"), login(server, "betty", "betty pass 1")
    answer = laptop.post(server.url + "/account/password.json", headers=JSON, data={
        "current_password": "betty pass 1", "new_password": "betty pass 2", "confirm": "betty pass 2"})  # fmt: skip
    assert answer.json() == {"changed": True}
    assert laptop.get(server.url + "/index.json").status_code == 200
    assert desktop.get(server.url + "/index.json").status_code == 401
