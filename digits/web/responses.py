"""How a view answers: HTML for browsers, JSON for ``.json`` routes and clients that ask for it."""

from __future__ import annotations

from flask import request


def wants_json() -> bool:
    """True for ``/x.json`` routes, JSON bodies, and requests that prefer JSON over HTML."""
    if request.path.endswith(".json") or request.is_json:
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]
