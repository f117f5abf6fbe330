"""The web layer's doors, tried as an attacker would against a real server: foreign host names (DNS rebinding),
cross-site posts and sockets, rooms without a login, state-changing GETs, leaky errors; and the same requests
made the right way."""

from __future__ import annotations

import logging
import re

import pytest
import requests
import socketio
from server import LiveServer

from digits.jobs import Job, JobStore, new_job_id
from digits.tensorboard import key_of

EVIL = "evil.example"


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """A server (single-user mode, as tests/server.py starts it) with one model job that has no summaries."""
    jobs_dir = tmp_path_factory.mktemp("security") / "jobs"
    jobs_dir.mkdir()
    model = Job(id=new_job_id(), type="model", kind="image-classification", name="lenet", username="fred",
                directory="")  # fmt: skip
    JobStore(jobs_dir).add(model)
    server = LiveServer(jobs_dir).start(timeout=120)
    yield server, model.id
    server.stop()


def own_origin(server: LiveServer) -> str:
    return f"http://127.0.0.1:{server.port}"


def logged_in(server: LiveServer) -> tuple[requests.Session, str]:
    """A session logged in as fred (the way a browser does: same origin, with the token); and its CSRF token."""
    session = requests.Session()
    token = csrf_token(session, server)
    answer = session.post(server.url + "/login", data={"username": "fred", "csrf_token": token},
                          headers={"Origin": own_origin(server)}, allow_redirects=False)  # fmt: skip
    assert answer.status_code in (200, 302), answer.text
    return session, csrf_token(session, server)


def csrf_token(session: requests.Session, server: LiveServer) -> str:
    page = session.get(server.url + "/", headers={"Accept": "text/html"}).text
    return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)


# -- Host: DNS rebinding ----------------------------------------------------------------------------------
def test_a_foreign_host_name_is_refused_and_told_how_to_allow_it(live):
    server, _ = live
    for host in (EVIL, f"{EVIL}:{server.port}", "127.0.0.1.evil.example", "[::2]"):
        answer = requests.get(server.url + "/index.json", headers={"Host": host})
        assert answer.status_code == 400, host
        assert "DIGITS_ALLOWED_HOSTS" in answer.text
    # The same request under the names the server has by default.
    for host in (f"127.0.0.1:{server.port}", f"localhost:{server.port}", "LOCALHOST", f"[::1]:{server.port}"):
        assert requests.get(server.url + "/index.json", headers={"Host": host}).status_code == 200, host


def test_a_rebinding_page_cannot_post(live):
    server, _ = live
    session = requests.Session()
    token = csrf_token(session, server)
    # The rebinding page's own name in Host and Origin: refused before anything runs.
    forged = session.post(server.url + "/login", data={"username": "mallory", "csrf_token": token},
                          headers={"Host": EVIL, "Origin": f"http://{EVIL}"}, allow_redirects=False)  # fmt: skip
    assert forged.status_code == 400 and "DIGITS_ALLOWED_HOSTS" in forged.text
    # An allowed Host but a foreign origin (or another port or scheme of this machine): refused too.
    for origin in (f"http://{EVIL}", f"http://localhost:{server.port + 1}", f"https://127.0.0.1:{server.port}", "null"):
        answer = session.post(server.url + "/login", data={"username": "mallory", "csrf_token": token},
                              headers={"Origin": origin}, allow_redirects=False)  # fmt: skip
        assert answer.status_code == 403, origin
    referred = session.post(server.url + "/login", data={"username": "mallory", "csrf_token": token},
                            headers={"Referer": f"http://{EVIL}/page"}, allow_redirects=False)  # fmt: skip
    assert referred.status_code == 403
    # The right way: this server's origin (under any of its names) and the token (a new one per login).
    for origin in (own_origin(server), f"http://localhost:{server.port}"):
        token = csrf_token(session, server)
        answer = session.post(server.url + "/login", data={"username": "fred", "csrf_token": token},
                              headers={"Origin": origin}, allow_redirects=False)  # fmt: skip
        assert answer.status_code == 302, (origin, answer.text)


# -- Socket.IO -------------------------------------------------------------------------------------------
def socket_client(server: LiveServer, headers: dict) -> socketio.Client:
    client = socketio.Client(reconnection=False)
    client.connect(server.url, headers=headers, transports=["polling"], socketio_path="socket.io", wait_timeout=10)
    return client


def test_a_cross_site_socket_is_refused(live):
    server, _ = live
    with pytest.raises(socketio.exceptions.ConnectionError):
        socket_client(server, {"Origin": f"http://{EVIL}"})
    with pytest.raises(socketio.exceptions.ConnectionError):
        socket_client(server, {"Origin": f"http://{EVIL}", "Host": EVIL})
    client = socket_client(server, {"Origin": own_origin(server)})
    assert client.connected
    client.disconnect()


def test_rooms_need_a_login_and_a_real_room(live):
    server, model = live
    anonymous = socket_client(server, {"Origin": own_origin(server)})
    try:
        for room in (model, "home"):
            assert "Log in" in anonymous.call("join", {"room": room}, timeout=10)["error"]
    finally:
        anonymous.disconnect()

    session, _ = logged_in(server)
    cookie = "; ".join(f"{name}={value}" for name, value in session.cookies.items())
    fred = socket_client(server, {"Origin": own_origin(server), "Cookie": cookie})
    try:
        assert fred.call("join", {"room": model}, timeout=10) == {"joined": model}
        assert fred.call("join", {"room": "home"}, timeout=10) == {"joined": "home"}
        assert "No room" in fred.call("join", {"room": "20990101-000000-dead"}, timeout=10)["error"]
        assert "No room" in fred.call("join", {"room": ["home"]}, timeout=10)["error"]
    finally:
        fred.disconnect()


# -- headers and cookies ----------------------------------------------------------------------------------
def test_every_answer_forbids_framing_and_sniffing(live):
    server, _ = live
    answers = [
        requests.get(server.url + "/index.json"),
        requests.get(server.url + "/", headers={"Accept": "text/html"}),
        requests.get(server.url + "/datasets/nope.json"),  # an error
        requests.get(server.url + "/index.json", headers={"Host": EVIL}),  # refused at the door
        requests.get(server.url + "/tensorboard/0123456789ab/"),  # the TensorBoard proxy
        requests.get(server.url + "/socket.io/?EIO=4&transport=polling"),
    ]
    for answer in answers:
        assert answer.headers.get("Content-Security-Policy") == "frame-ancestors 'self'", answer.url
        assert answer.headers.get("X-Content-Type-Options") == "nosniff", answer.url


def test_the_session_cookie_is_http_only_and_same_site(live):
    server, _ = live
    session = requests.Session()
    token = csrf_token(session, server)
    answer = session.post(server.url + "/login", data={"username": "fred", "csrf_token": token},
                          headers={"Origin": own_origin(server)}, allow_redirects=False)  # fmt: skip
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Expires=" in cookie
    assert "Secure" not in cookie  # plain HTTP without a proxy: a Secure cookie would never come back


def test_behind_a_trusted_proxy_its_host_counts_and_cookies_are_secure(make_app):
    app = make_app(trusted_proxies=1, allowed_hosts=["digits.example.org"])
    client = app.test_client()
    behind = {"X-Forwarded-Host": "digits.example.org", "X-Forwarded-Proto": "https", "X-Forwarded-For": "10.0.0.9"}
    assert client.get("/index.json", headers=behind).status_code == 200
    assert client.get("/index.json", headers={**behind, "X-Forwarded-Host": EVIL}).status_code == 400
    answer = client.post("/login", data={"username": "fred"}, headers=behind)
    assert "Secure" in answer.headers["Set-Cookie"]
    # Without a trusted proxy the forwarded headers are the client's word, and do not count.
    plain = make_app().test_client()
    assert plain.get("/index.json", headers={"Host": EVIL, "X-Forwarded-Host": "localhost"}).status_code == 400


# -- state changes are POSTs ------------------------------------------------------------------------------
def test_a_get_does_not_start_tensorboard(live):
    server, model = live
    session, token = logged_in(server)
    page = session.get(server.url + f"/tensorboard?job_id={model}", headers={"Accept": "text/html"})
    assert page.status_code == 200 and 'method="post"' in page.text and 'id="tensorboard-start"' in page.text
    assert session.get(server.url + f"/tensorboard.json?job_id={model}").status_code == 405
    running = session.get(server.url + f"/tensorboard/{key_of([model])}/")
    assert running.status_code == 404 and "not running" in running.json()["errors"]
    # A page elsewhere cannot make the POST instead.
    forged = session.post(server.url + "/tensorboard.json", data={"job_id": model, "csrf_token": token},
                          headers={"Origin": f"http://{EVIL}"})  # fmt: skip
    assert forged.status_code == 403
    # The right way reaches the view, which answers that this model has nothing to show yet.
    answer = session.post(server.url + "/tensorboard.json", data={"job_id": model, "csrf_token": token},
                          headers={"Origin": own_origin(server)})  # fmt: skip
    assert answer.status_code == 400 and "no TensorBoard summaries yet" in answer.json()["errors"]


def test_export_is_a_post(live):
    server, model = live
    session, token = logged_in(server)
    assert session.get(server.url + f"/models/{model}/export.zip").status_code == 405
    answer = session.post(server.url + f"/models/{model}/export.zip", data={"csrf_token": token},
                          headers={"Origin": own_origin(server)})  # fmt: skip
    assert answer.status_code == 400 and "snapshot" in answer.json()["errors"]  # reached the view: nothing to export


# -- errors -------------------------------------------------------------------------------------------------
def test_an_unexpected_error_answers_an_id_not_its_text(make_app, caplog):
    app = make_app()

    @app.route("/boom")
    def boom():
        raise RuntimeError("secret: /srv/private/key.pem")

    client = app.test_client()
    with caplog.at_level(logging.ERROR, logger="digits.web.errors"):
        answer = client.get("/boom")
    assert answer.status_code == 500
    message = answer.get_json()["errors"]
    error_id = re.search(r"error ([0-9a-f]{6})\)", message).group(1)
    assert "secret" not in answer.get_data(as_text=True) and "RuntimeError" not in answer.get_data(as_text=True)
    logged = [r for r in caplog.records if error_id in r.getMessage()]
    assert logged and logged[0].exc_info and "secret: /srv/private/key.pem" in caplog.text
    page = client.get("/boom", headers={"Accept": "text/html"}).get_data(as_text=True)
    assert "Something went wrong on the server" in page and "secret" not in page
    # HTTP errors keep their own messages.
    assert client.get("/datasets/nope.json").get_json()["errors"] == "No dataset with id 'nope'."
