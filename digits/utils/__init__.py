"""Helpers DIGITS' plugins import: ``subclass`` and ``override``; ``forms`` and ``image`` on first use.

A plugin written for DIGITS does ``from digits.utils import subclass, override, constants`` and
``from digits import utils; utils.forms.IntegerField(...)``: these names keep working. ``forms``
(WTForms) and ``image`` (Pillow) load only when a plugin touches them, so a tool that needs the
decorators alone stays light.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

__all__ = ["constants", "forms", "image", "override", "subclass"]

_LAZY_SUBMODULES = ("constants", "forms", "image")


def override(method):
    """Mark ``method`` as overriding a method of a base class; :func:`subclass` checks that it does.

    Put it under ``@staticmethod`` (``@staticmethod`` then ``@override``), as DIGITS' plugins do.
    """
    method.override = True
    return method


def _marked(member: Any) -> bool:
    return bool(getattr(member, "override", False) or getattr(getattr(member, "__func__", None), "override", False))


def subclass(cls: type) -> type:
    """Class decorator: every ``@override`` method of ``cls`` must exist in a base class.

    A marked method without a docstring takes the base class's, so a plugin's methods document
    themselves. Raises TypeError naming the method otherwise (a typo in a method name is caught when
    the plugin is imported, not when DIGITS first calls the method and finds the interface's default).
    """
    for name, member in vars(cls).items():
        if not _marked(member):
            continue
        base = next((b for b in inspect.getmro(cls)[1:] if name in vars(b)), None)
        if base is None:
            raise TypeError(f"{cls.__name__}.{name} is marked @override but no base class of {cls.__name__} has it")
        function = getattr(member, "__func__", member)
        if not function.__doc__:
            base_member = vars(base)[name]
            function.__doc__ = getattr(base_member, "__func__", base_member).__doc__
    return cls


def __getattr__(name: str):
    # PEP 562: ``digits.utils.forms`` and ``digits.utils.image`` are imported on first access.
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
