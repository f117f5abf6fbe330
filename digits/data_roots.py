"""The data roots: the directories under which forms may name server paths (folders, list files, databases).

A path is allowed when, symlinks followed, it lies in one of the roots (``DIGITS_DATA_ROOTS``; by default
the jobs directory and the directory the server started in). Without this any account could make the
web process read any file the server can: ``/etc/passwd`` as a dataset's labels, a list file's lines in
an error list. Nothing here imports Flask.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from wtforms.validators import StopValidation


def outside_data_roots(path: str | os.PathLike, roots: Sequence[Path]) -> str | None:
    """Why the server may not read ``path``: the message naming the roots when, symlinks followed, it lies
    in none of ``roots``; None when it lies in one. A relative path is taken from the server's directory."""
    if "\0" in os.fspath(path):
        return f"{path!r} holds a NUL character: no file has such a name."
    real = os.path.realpath(path)
    for root in roots:
        top = os.path.realpath(root)
        if os.path.commonpath([real, top]) == top:
            return None
    names = ", ".join(str(root) for root in roots) or "none"
    return f"{path} is outside the data roots ({names}); set DIGITS_DATA_ROOTS to allow it."


def inside_data_roots(form, field) -> None:
    """WTForms validator: an empty field, or a server path inside ``form.roots`` (a form without roots
    allows none). Stops the field's other validators, so nothing outside the roots is ever opened."""
    path = (field.data or "").strip()
    if not path:
        return
    problem = outside_data_roots(path, getattr(form, "roots", ()))
    if problem:
        raise StopValidation(problem)
