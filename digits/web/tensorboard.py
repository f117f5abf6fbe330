"""TensorBoard through the app.

``POST /tensorboard`` with ``job_id=a&job_id=b`` starts (or finds) the TensorBoard of those jobs and redirects
to ``/tensorboard/<key>/``, which :class:`TensorBoardProxy` forwards to it; ``POST /tensorboard.json`` says
where it is. Starting a server is a change, so a GET (a link, or a page elsewhere) only shows a button.
"""

from __future__ import annotations

import http.client
import re
from pathlib import Path

from flask import Blueprint, abort, redirect, render_template, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.wrappers import Response

from digits.auth import current_username, login_required
from digits.jobs import Job
from digits.tensorboard import TensorBoardError, TensorBoardServer, key_of
from digits.web.jobs import get_job
from digits.web.responses import wants_json
from digits.web.services import current_services

blueprint = Blueprint("tensorboard", __name__)

NO_SUMMARIES = "no TensorBoard summaries yet: training has not started"
# Headers that belong to one connection, not to the request or answer passed along (RFC 9110, 7.6.1).
HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "trailers",
    "transfer-encoding", "upgrade", "host", "cookie",
}  # fmt: skip
UPSTREAM_TIMEOUT = 120
CHUNK = 64 * 1024


def init_app(app) -> None:
    """Register the pages and put the proxy in front of the app."""
    app.register_blueprint(blueprint)
    app.wsgi_app = TensorBoardProxy(app.wsgi_app, app)


def selected_models(job_ids: list[str]) -> list[Job]:
    if not job_ids:
        abort(400, description="Choose one or more models: send job_id=<id> for each.")
    return [get_job(job_id, "model") for job_id in dict.fromkeys(job_ids)]


def tensorboard_runs(jobs: list[Job]) -> dict[str, str]:
    """``{run name: summaries folder}``: runs are named after the models (made unique), as TensorBoard lists them.

    Aborts with 400 when a job has no summaries yet.
    """
    runs: dict[str, str] = {}
    missing = []
    for job in jobs:
        folder = Path(job.directory) / "tb"
        if not folder.is_dir():
            missing.append(job.name)
            continue
        # logdir_spec separates runs with "," and a name from its folder with ":".
        name = re.sub(r"[,:]", " ", job.name).strip() or job.id
        if name in runs:
            name = f"{name} ({job.id})"
        runs[name] = str(folder)
    if missing:
        who = f"{missing[0]}: " if len(jobs) == 1 else f"{', '.join(missing)}: "
        abort(400, description=who + NO_SUMMARIES)
    return runs


# url_for builds the first rule registered: the one nearest the function.
@blueprint.route("/tensorboard.json", methods=["POST"])
@blueprint.route("/tensorboard", methods=["GET", "POST"])
@login_required
def open_tensorboard():
    """Start or find the TensorBoard of the ``job_id`` models; go there (or say where it is, for ``.json``).

    A GET answers a page naming the models with a button that POSTs the same request.
    """
    jobs = selected_models(request.values.getlist("job_id"))
    if request.method == "GET":
        if wants_json():
            raise MethodNotAllowed(["POST"], description="POST /tensorboard.json to start TensorBoard.")
        return render_template("tensorboard/open.html", jobs=jobs)
    runs = tensorboard_runs(jobs)
    key = key_of(job.id for job in jobs)
    try:
        current_services().tensorboard.open(key, runs)
    except TensorBoardError as exc:
        abort(503, description=f"TensorBoard: {exc}")
    url = f"{request.script_root}/tensorboard/{key}/"
    if wants_json():
        return {"key": key, "url": url, "runs": sorted(runs)}
    return redirect(url + "#scalars")


class TensorBoardProxy:
    """WSGI middleware: ``/tensorboard/<key>/...`` goes to that TensorBoard, everything else to the app.

    Not a Flask view: TensorBoard's page POSTs its data queries with its own XSRF header
    (``X-XSRF-Protected``, which a cross-site form cannot send) and without the app's CSRF token, which the
    app's CSRF check would refuse. The login is checked here (:func:`current_username` reads the session).
    """

    PATH = re.compile(r"^/tensorboard/([0-9a-f]{12})(/.*)?$")

    def __init__(self, wsgi_app, app):
        self.wsgi_app = wsgi_app
        self.app = app

    def __call__(self, environ, start_response):
        match = self.PATH.match(environ.get("PATH_INFO", ""))
        if not match:
            return self.wsgi_app(environ, start_response)
        with self.app.request_context(environ):
            try:
                response = self._forward(match.group(1), match.group(2) or "")
            except HTTPException as exc:
                response = self.app.make_response(self.app.handle_http_exception(exc))
        return response(environ, start_response)

    def _forward(self, key: str, rest: str) -> Response:
        if current_username() is None:
            abort(401, description="Log in to DIGITS to open TensorBoard.")
        try:
            server = current_services().tensorboard.find(key)
        except TensorBoardError as exc:
            abort(503, description=f"TensorBoard: {exc}")
        if server is None:
            abort(404, description="This TensorBoard is not running: open it again from the model's page.")
        return forward(server, rest)


def forward(server: TensorBoardServer, rest: str) -> Response:
    """Send the current request to ``server`` (its path after the server's prefix is ``rest``); stream the answer."""
    path = server.path_prefix + rest
    if request.query_string:
        path += "?" + request.query_string.decode("latin-1")
    headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
    body = request.stream if request.content_length else None
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=UPSTREAM_TIMEOUT)
    try:
        connection.request(request.method, path, body=body, headers=headers)
        upstream = connection.getresponse()
    except OSError as exc:
        connection.close()
        abort(502, description=f"TensorBoard did not answer ({exc}): {server.log_tail()}")

    def stream():
        try:
            while chunk := upstream.read1(CHUNK):
                yield chunk
        finally:
            connection.close()

    answer = [(k, v) for k, v in upstream.getheaders() if k.lower() not in HOP_BY_HOP]
    return Response(stream(), status=upstream.status, headers=answer, direct_passthrough=True)
