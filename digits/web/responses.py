"""How a view answers: HTML for browsers, JSON for ``.json`` routes and clients that ask for it."""

from __future__ import annotations

from flask import request


def wants_json() -> bool:
    """True for ``/x.json`` routes and for requests that prefer JSON over HTML."""
    if request.path.endswith(".json"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]
