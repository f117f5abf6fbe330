"""Finding extensions: the built-in classes plus the installed plugins' entry points, broken ones set aside.

A plugin package declares, in its ``setup.py``::

    entry_points={"digits.plugins.data": ["class=myPlugin:DataIngestion"]}

(the name before ``=`` is free; DIGITS' plugins all use ``class``). Loading an entry point imports the
plugin, which may fail in any way: the failure is recorded as a :class:`BrokenExtension` with its reason
and traceback, and every other extension stays usable. Before any plugin is imported, the
``flask.ext`` names DIGITS' plugins use are made importable (:mod:`digits.extensions.flask_ext`).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import logging
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from digits.extensions import flask_ext

log = logging.getLogger(__name__)

BUILT_IN = "built-in"


@dataclass
class Extension:
    """A usable extension: its class and what the pages show about it."""

    kind: str  # "data" or "view"
    id: str
    title: str
    cls: type
    category: str | None = None  # data extensions: the New Dataset menu heading
    origin: str = BUILT_IN  # "built-in", or the distribution that declared it
    entry_point: str | None = None  # "module:attr" for plugins
    visible: bool = True  # get_default_visibility(): listed in menus (usable by URL either way)

    @property
    def directory(self) -> Path:
        """The folder of the module that defines the class: its templates/ and static/ are found from there."""
        return Path(inspect.getfile(self.cls)).resolve().parent

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.id,
            "title": self.title,
            "category": self.category,
            "origin": self.origin,
            "entry_point": self.entry_point,
            "visible": self.visible,
        }


@dataclass
class BrokenExtension:
    """A plugin that could not be used, and why."""

    kind: str
    name: str  # the extension id when known, else the entry point ("module:attr")
    origin: str
    reason: str  # one line a user can read
    traceback: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "origin": self.origin,
            "reason": self.reason,
            "traceback": self.traceback,
        }


@dataclass
class Catalog:
    """The extensions of one kind: usable ones by id, and the broken ones."""

    kind: str
    extensions: dict[str, Extension] = field(default_factory=dict)
    broken: list[BrokenExtension] = field(default_factory=list)

    def get(self, extension_id: str) -> Extension | None:
        return self.extensions.get(extension_id)

    def broken_reason(self, extension_id: str) -> str | None:
        """Why the extension ``extension_id`` is broken, or None when it is not (known to be)."""
        return next((b.reason for b in self.broken if b.name == extension_id), None)

    def mark_broken(self, extension_id: str, exc: BaseException, doing: str) -> BrokenExtension:
        """Take an extension out of use after it raised while ``doing`` something (until the server restarts)."""
        extension = self.extensions.pop(extension_id, None)
        origin = extension.origin if extension else "?"
        broken = BrokenExtension(
            self.kind,
            extension_id,
            origin,
            f"{doing} raised {type(exc).__name__}: {exc}",
            "".join(traceback.format_exception(exc)),
        )
        self.broken = [b for b in self.broken if b.name != extension_id] + [broken]
        log.error("%s extension %s is broken: %s", self.kind, extension_id, broken.reason)
        return broken

    def by_category(self) -> dict[str, list[Extension]]:
        """Usable extensions grouped by category, each group sorted by title."""
        groups: dict[str, list[Extension]] = {}
        for extension in sorted(self.extensions.values(), key=lambda e: e.title.lower()):
            if not extension.visible:
                continue
            groups.setdefault(extension.category or "Other", []).append(extension)
        return groups

    def to_dict(self) -> dict[str, Any]:
        return {
            "extensions": [e.to_dict() for e in self.extensions.values()],
            "broken": [b.to_dict() for b in self.broken],
        }


class NotAnExtension(ValueError):
    """A class that an entry point names but that cannot be used as an extension; the message says why."""


def _one_line(exc: BaseException) -> str:
    text = str(exc) if isinstance(exc, NotAnExtension) else f"{type(exc).__name__}: {exc}"
    return (text.splitlines() or [type(exc).__name__])[0]


def _describe(kind: str, cls: Any, required: Iterable[str], origin: str, entry_point: str | None) -> Extension:
    """Check ``cls`` is an extension class and read its id, title (and category); raises NotAnExtension."""
    if not inspect.isclass(cls):
        raise NotAnExtension(f"the entry point names {type(cls).__name__} {cls!r}, not a class")
    missing = [name for name in required if not callable(getattr(cls, name, None))]
    if missing:
        raise NotAnExtension(f"{cls.__name__} lacks {', '.join(missing)}")

    def ask(name: str):
        try:
            return getattr(cls, name)()
        except Exception as exc:
            raise NotAnExtension(f"{cls.__name__}.{name}() raised {type(exc).__name__}: {exc}".rstrip(": ")) from exc

    extension_id = ask("get_id")
    if not isinstance(extension_id, str) or not extension_id.strip() or "/" in extension_id:
        raise NotAnExtension(
            f"{cls.__name__}.get_id() returned {extension_id!r}: it must be a non-empty string without '/'"
        )
    title = ask("get_title")
    category = ask("get_category") if kind == "data" else None
    visible = bool(ask("get_default_visibility")) if callable(getattr(cls, "get_default_visibility", None)) else True
    category = str(category) if category else None
    return Extension(kind, extension_id, str(title), cls, category, origin, entry_point, visible)


def discover(kind: str, group: str, builtins: Callable[[], list[type]], required: Iterable[str]) -> Catalog:
    """The catalog of ``kind`` extensions: ``builtins()`` first, then the entry points of ``group``.

    An id used twice keeps its first extension; the second is listed as broken.
    """
    catalog = Catalog(kind)
    required = tuple(required)

    def add(load: Callable[[], Any], origin: str, entry_point: str | None) -> None:
        try:
            extension = _describe(kind, load(), required, origin, entry_point)
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not stop the others or the server
            name = entry_point or origin
            catalog.broken.append(BrokenExtension(kind, name, origin, _one_line(exc), traceback.format_exc()))
            log.error("cannot load %s extension %s from %s: %s", kind, name, origin, _one_line(exc))
            return
        if extension.id in catalog.extensions:
            first = catalog.extensions[extension.id]
            catalog.broken.append(
                BrokenExtension(kind, extension.id, origin, f"id {extension.id!r} is already used by {first.origin}")
            )
            return
        catalog.extensions[extension.id] = extension

    try:
        builtin_classes = builtins()
    except Exception as exc:  # noqa: BLE001 - the built-in ones failing must not stop the plugins
        builtin_classes = []
        catalog.broken.append(BrokenExtension(kind, "built-in", BUILT_IN, _one_line(exc), traceback.format_exc()))
    for cls in builtin_classes:
        add(lambda cls=cls: cls, BUILT_IN, None)
    # Plugins written for DIGITS import ``flask.ext.wtf``, which Flask no longer has.
    flask_ext.install()
    # A package installed since this process started is only importable once the finders forget what
    # they listed before (the tests install plugins while running).
    importlib.invalidate_caches()
    for entry_point in sorted(importlib.metadata.entry_points(group=group), key=lambda e: e.value):
        dist = getattr(entry_point, "dist", None)
        origin = f"{dist.name} {dist.version}" if dist else "unknown package"
        add(entry_point.load, origin, entry_point.value)
    return catalog
