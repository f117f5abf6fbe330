"""How much one request may send and start: body limits per route, slots for exports and Visualize, and the
answers past them (413 with the limit and its setting; 503 with ``Retry-After`` for "busy", from :class:`Busy`).

Bodies are small by default (``DIGITS_MAX_FORM_MB``: forms, JSON edits); the endpoints of
:data:`UPLOAD_ENDPOINTS` take files and get ``DIGITS_MAX_UPLOAD_MB``.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, abort, current_app, make_response, request
from werkzeug.exceptions import ServiceUnavailable

from digits.busy import Busy, Slots
from digits.config import Config

KEY = "digits.limits"

# The routes whose forms carry files: dataset list and label uploads, data extension forms, model archives
# and files, inference images and lists.
UPLOAD_ENDPOINTS = frozenset({
    "datasets.create", "generic_datasets.create",
    "pretrained.upload_archive", "pretrained.upload_files",
    "inference.classify_one", "inference.classify_many", "inference.top_n",
    "inference.infer_one", "inference.infer_many", "inference.infer_extension",
})  # fmt: skip


@dataclass
class RequestLimits:
    """The limits of one app: body sizes in bytes, and the slots of the work run a few at a time."""

    form_bytes: int
    upload_bytes: int
    exports: Slots
    visualizations: Slots

    @classmethod
    def from_config(cls, config: Config) -> RequestLimits:
        return cls(
            form_bytes=config.max_form_mb << 20,
            upload_bytes=config.max_upload_mb << 20,
            exports=Slots(config.max_exports, "exports", "DIGITS_MAX_EXPORTS", retry_after=30),
            visualizations=Slots(config.max_visualizations, "network visualizations", "DIGITS_MAX_VISUALIZATIONS"),
        )

    def body_limit(self, endpoint: str | None) -> tuple[int, str]:
        """The most bytes a request to ``endpoint`` may send, and the setting that says so."""
        if endpoint in UPLOAD_ENDPOINTS:
            return self.upload_bytes, "DIGITS_MAX_UPLOAD_MB"
        return self.form_bytes, "DIGITS_MAX_FORM_MB"


def init_app(app: Flask, config: Config) -> None:
    """Install the limits; call before anything that reads request bodies in ``before_request`` (CSRF)."""
    limits = app.extensions[KEY] = RequestLimits.from_config(config)
    app.config["MAX_CONTENT_LENGTH"] = limits.form_bytes
    app.before_request(_check_body_size)
    app.register_error_handler(Busy, _busy)


def current_limits() -> RequestLimits:
    """The running app's limits (inside a request)."""
    return current_app.extensions[KEY]


def _check_body_size() -> None:
    """413 saying the limit and its setting for a body declared too large; a body sent without a length is
    cut at the same limit by Werkzeug as it is read."""
    limit, setting = current_limits().body_limit(request.endpoint)
    request.max_content_length = limit
    if request.content_length is not None and request.content_length > limit:
        sent = request.content_length / (1 << 20)
        abort(413, description=f"The request body ({sent:.1f} MiB) is larger than this route accepts: "
                               f"at most {limit / (1 << 20):g} MiB ({setting} on the server).")  # fmt: skip


def _busy(exc: Busy):
    """503 with ``Retry-After``, answered by the app's HTTP error handler (JSON or the error page)."""
    response = make_response(current_app.handle_http_exception(ServiceUnavailable(description=f"Busy: {exc}.")))
    response.headers["Retry-After"] = str(exc.retry_after)
    return response
