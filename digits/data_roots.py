"""The data roots: the directories under which forms may name server paths (folders, list files, databases).

A path is allowed when, symlinks followed, it lies in one of the roots (``DIGITS_DATA_ROOTS``; by default
the jobs directory and the directory the server started in). Without this any account could make the
web process read any file the server can: ``/etc/passwd`` as a dataset's labels, a list file's lines in
an error list. Nothing here imports Flask.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

from wtforms.validators import StopValidation


def outside_data_roots(path: str | os.PathLike, roots: Sequence[Path]) -> str | None:
    """Why the server may not read ``path``: the message naming the roots when, symlinks followed, it lies
    in none of ``roots``; None when it lies in one. A relative path is taken from the server's directory."""
    return DataRootsCheck(roots)(path)


class DataRootsCheck:
    """:func:`outside_data_roots` for many paths (the lines of a list), with the same answers: the roots and
    each folder have their symlinks followed once, so another path of a folder already seen costs one
    ``lstat`` of its own name instead of one per component. Make one per request: links changed since are
    then followed anew."""

    def __init__(self, roots: Sequence[Path]):
        self.roots = roots
        # Each root's real path with a final separator, as the checked path gets: "/data2/" does not start with
        # "/data/", "/data/" and "/data/x/" do.
        self._tops = [os.path.join(os.path.realpath(root), "") for root in roots]
        self._real_folders: dict[str, str] = {}

    def __call__(self, path: str | os.PathLike) -> str | None:
        """Why the server may not read ``path``, or None (see :func:`outside_data_roots`)."""
        if "\0" in os.fspath(path):
            return f"{path!r} holds a NUL character: no file has such a name."
        real = os.path.join(self._realpath(os.fspath(path)), "")
        if any(real.startswith(top) for top in self._tops):
            return None
        names = ", ".join(str(root) for root in self.roots) or "none"
        return f"{path} is outside the data roots ({names}); set DIGITS_DATA_ROOTS to allow it."

    def _realpath(self, path: str) -> str:
        # realpath(folder/name) is realpath(folder)/name unless name is itself a link (followed then).
        folder, name = os.path.split(path)
        if not os.path.isabs(path) or name in ("", ".", ".."):
            return os.path.realpath(path)
        real_folder = self._real_folders.get(folder)
        if real_folder is None:
            real_folder = self._real_folders[folder] = os.path.realpath(folder)
        real = os.path.join(real_folder, name)
        try:
            is_link = stat.S_ISLNK(os.lstat(real).st_mode)
        except OSError:  # missing or unreadable: realpath keeps the name as it is, so do we
            is_link = False
        return os.path.realpath(real) if is_link else real


def inside_data_roots(form, field) -> None:
    """WTForms validator: an empty field, or a server path inside ``form.roots`` (a form without roots
    allows none). Stops the field's other validators, so nothing outside the roots is ever opened."""
    path = (field.data or "").strip()
    if not path:
        return
    problem = outside_data_roots(path, getattr(form, "roots", ()))
    if problem:
        raise StopValidation(problem)
