"""The app's error handlers, all here: JSON ``{"errors": ...}`` for scripts, an error page for browsers."""

from __future__ import annotations

import logging
import secrets

from flask import render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from digits.extensions.web import ExtensionError
from digits.jobs import JobSaveError
from digits.web.responses import wants_json

log = logging.getLogger(__name__)


class InsufficientStorage(HTTPException):
    code = 507
    description = "The server has no space left to save this."


def init_app(app) -> None:
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(ExtensionError, _extension_failed)
    app.register_error_handler(JobSaveError, _save_failed)
    app.register_error_handler(Exception, _unexpected_error)


def _http_error(exc: HTTPException):
    if isinstance(exc, CSRFError):
        exc.code = 400
    message = exc.description or exc.name
    # Browsers ask for text/html; anything else (curl's */*, scripts) gets JSON it can parse.
    if wants_json() or "text/html" not in request.headers.get("Accept", ""):
        return {"errors": message, "error": message}, exc.code
    return render_template("error.html", code=exc.code, title=exc.name, message=message, details=None), exc.code


def _save_failed(exc: JobSaveError):
    """A job could not be saved (a full disk): 507 saying so; nothing was changed."""
    log.error("%s %s: %s", request.method, request.path, exc)
    return _http_error(InsufficientStorage(f"{exc}: nothing was changed; free some space and try again."))


def _unexpected_error(exc: Exception):
    """A bug or a failure we did not foresee: the log gets the traceback, the user an id to find it by.

    The exception's text stays out of the answer: it can hold paths, settings or data of the server.
    """
    error_id = secrets.token_hex(3)
    log.exception("unexpected error %s on %s %s", error_id, request.method, request.path)
    message = f"Something went wrong on the server (error {error_id}); the server log has the details."
    return _http_error(InternalServerError(message))


def _extension_failed(error: ExtensionError):
    """An extension raised in the web process: say which and show its traceback; the server goes on."""
    if wants_json():
        return {"errors": str(error), "error": str(error), "traceback": error.traceback}, 500
    return render_template("extensions/error.html", error=error), 500
