"""The web layer's doors: which host names the server answers, which origins may post or open a socket, and the
headers every answer carries.

A page on another site can reach a server on 127.0.0.1 by DNS rebinding: its own name, resolved to the
loopback address. Its requests then name that foreign host in ``Host`` and ``Origin``, so the server must
compare both with the names it is allowed (``DIGITS_ALLOWED_HOSTS``), not with each other.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, request

ALLOWED_HOSTS_KEY = "DIGITS_ALLOWED_HOSTS"
DEFAULT_PORTS = {"http": 80, "https": 443}
SECURITY_HEADERS = [
    # No other site may frame the pages (clickjacking); ours may, TensorBoard's dashboards do.
    ("Content-Security-Policy", "frame-ancestors 'self'"),
    ("X-Content-Type-Options", "nosniff"),
]


def split_host(host: str) -> tuple[str, int | None]:
    """``"Example.org:8080"`` -> ``("example.org", 8080)``; ``"[::1]:5000"`` -> ``("::1", 5000)``.

    The port is None when the value names none; a port that is not a number makes the whole value
    unusable: ``("", None)``.
    """
    host = (host or "").strip().lower()
    if host.startswith("["):
        name, bracket, rest = host[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return "", None
        port = rest[1:]
    elif host.count(":") > 1:  # a bare IPv6 address: no port can be told apart
        return host, None
    else:
        name, _, port = host.partition(":")
    if port and not port.isdigit():
        return "", None
    return name.rstrip("."), int(port) if port else None


def request_scheme_and_port(environ) -> tuple[str, int]:
    """The scheme and port a client used to reach this request (after ProxyFix, the proxy's)."""
    scheme = environ.get("wsgi.url_scheme", "http")
    _, port = split_host(environ.get("HTTP_HOST", ""))
    if port is None:
        port = DEFAULT_PORTS.get(scheme) if environ.get("HTTP_HOST") else int(environ.get("SERVER_PORT") or 0)
    return scheme, port


def is_allowed_origin(origin: str | None, environ, allowed_hosts: set[str]) -> bool:
    """Whether ``origin`` (an ``Origin`` or ``Referer`` value) is this server as an allowed host names it.

    Its host must be in ``allowed_hosts`` and its scheme and port those of the request; ``null`` and
    anything unparsable are refused.
    """
    if not origin:
        return False
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        return False
    if not parts.hostname or parts.hostname.rstrip(".") not in allowed_hosts:
        return False
    scheme, request_port = request_scheme_and_port(environ)
    return parts.scheme == scheme and (port or DEFAULT_PORTS.get(parts.scheme)) == request_port


def from_allowed_origin(origin: str | None) -> bool:
    """:func:`is_allowed_origin` for the current Flask request, with the app's allowlist."""
    return is_allowed_origin(origin, request.environ, current_app.config[ALLOWED_HOSTS_KEY])


class HostAllowlist:
    """WSGI middleware: answers 400 to a request whose ``Host`` is not an allowed host name.

    It wraps everything (Socket.IO and the TensorBoard proxy too), inside ProxyFix, which has already
    put a trusted proxy's ``X-Forwarded-Host`` in ``Host``.
    """

    def __init__(self, wsgi_app, allowed_hosts: set[str]):
        self.wsgi_app = wsgi_app
        self.allowed_hosts = allowed_hosts

    def __call__(self, environ, start_response):
        name, _ = split_host(environ.get("HTTP_HOST") or environ.get("SERVER_NAME", ""))
        if name in self.allowed_hosts:
            return self.wsgi_app(environ, start_response)
        # The name is echoed only through repr(), in plain text: nothing an attacker sends can become markup.
        message = (
            f"This server does not answer to the host name {name or environ.get('HTTP_HOST', '')!r}. "
            "To reach it under that name, add the name to DIGITS_ALLOWED_HOSTS (comma-separated) "
            "and restart the server.\n"
        )
        start_response("400 Bad Request", [("Content-Type", "text/plain; charset=utf-8")])
        return [message.encode()]


class SecurityHeaders:
    """WSGI middleware: adds :data:`SECURITY_HEADERS` to every answer (the app's, TensorBoard's, Socket.IO's).

    A middleware rather than ``after_request`` because the TensorBoard proxy and Socket.IO answer without
    Flask's response processing. ``nosniff`` is added where the answer lacks it; the policy always, because
    browsers enforce every policy an answer carries, so one of TensorBoard's own cannot loosen ours.
    """

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        def with_headers(status, headers, exc_info=None):
            present = {name.lower() for name, _ in headers}
            extra = [(name, value) for name, value in SECURITY_HEADERS
                     if name == "Content-Security-Policy" or name.lower() not in present]  # fmt: skip
            return start_response(status, [*headers, *extra], exc_info)

        return self.wsgi_app(environ, with_headers)
