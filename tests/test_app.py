"""The app as a whole: configuration, URL prefix, login, CSRF, errors, and no TensorFlow in the web process."""

from __future__ import annotations

import subprocess
import sys

from digits.config import Config
from digits.web.services import services_of


def test_config_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DIGITS_JOBS_DIR", str(tmp_path / "jobs"))
    monkeypatch.setenv("DIGITS_URL_PREFIX", "digits/")
    monkeypatch.setenv("DIGITS_LOGFILE_FILENAME", str(tmp_path / "digits.log"))
    monkeypatch.setenv("DIGITS_LOGFILE_LEVEL", "warning")
    config = Config.from_env(port=5123)
    assert config.jobs_dir == (tmp_path / "jobs").resolve()
    assert config.url_prefix == "/digits" and config.port == 5123 and config.host == "127.0.0.1"
    assert config.logfile == tmp_path / "digits.log" and config.log_level_number == 30


def test_secret_key_is_made_once_and_kept(tmp_path):
    first = Config.from_env(jobs_dir=tmp_path).load_secret_key()
    assert len(first) == 64
    assert Config.from_env(jobs_dir=tmp_path).load_secret_key() == first
    assert (tmp_path / ".secret_key").stat().st_mode & 0o777 == 0o600


def test_login_keeps_the_user_across_apps(make_app, tmp_path):
    app = make_app(tmp_path)
    client = app.test_client()
    client.post("/login", data={"username": "fred"})
    assert b"fred" in client.get("/").data
    services_of(app).scheduler.shutdown()
    # a restarted server still knows the cookie: the key is kept in the jobs directory
    again = make_app(tmp_path)
    other = again.test_client()
    other.set_cookie("session", client.get_cookie("session").value)
    assert b"fred" in other.get("/").data


def test_login_rejects_bad_names(client):
    answer = client.post("/login", data={"username": "no spaces allowed"})
    assert answer.status_code == 400 and b"Use letters, digits" in answer.data


def test_url_prefix(make_app, tmp_path):
    app = make_app(tmp_path, url_prefix="/digits")
    client = app.test_client()
    assert client.get("/digits/index.json").status_code == 200
    page = client.get("/digits/").get_data(as_text=True)
    assert 'href="/digits/datasets/images/classification/new"' in page
    assert '"/digits"' in page  # DIGITS.root, which the Socket.IO client's path is built from
    outside = client.get("/index.json")
    assert outside.status_code == 404 and b"under /digits/" in outside.data


def test_csrf_browsers_need_the_token_scripts_do_not(logged_in):
    origin = {"Origin": "http://localhost"}
    refused = logged_in.put("/jobs/x", json={"name": "n"}, headers=origin)
    assert refused.status_code == 400 and "reload the page" in refused.get_json()["errors"]
    cross_site = logged_in.put("/jobs/x", json={"name": "n"}, headers={"Origin": "http://evil.example"})
    assert cross_site.status_code == 403
    # no Origin, no Referer: a script; it reaches the view (which says the job does not exist)
    assert logged_in.put("/jobs/x", json={"name": "n"}).status_code == 404
    token = logged_in.get("/").get_data(as_text=True).split('name="csrf-token" content="')[1].split('"')[0]
    with_token = logged_in.put("/jobs/x", json={"name": "n"}, headers={**origin, "X-CSRFToken": token})
    assert with_token.status_code == 404


def test_errors_are_json_for_scripts_and_pages_for_browsers(client):
    assert client.get("/datasets/nope.json").get_json() == {
        "errors": "No dataset with id 'nope'.",
        "error": "No dataset with id 'nope'.",
    }
    page = client.get("/datasets/nope", headers={"Accept": "text/html"})
    assert page.status_code == 404 and b"No dataset with id" in page.data and b"<html" in page.data


def test_web_process_never_imports_tensorflow(tmp_path):
    code = (
        # the app as the server process builds it (digits.cli), without the test helpers
        "import sys; from digits.cli import DigitsServer; from digits.config import Config;"
        "from digits.web.services import services_of;"
        f"app = DigitsServer(Config.from_env(jobs_dir={str(tmp_path)!r})).load();"
        "c = app.test_client(); c.get('/'); c.get('/datasets/images/classification/new');"
        "services_of(app).scheduler.shutdown();"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf_slim')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
