"""``flask.ext.*`` for plugins written for DIGITS: ``from flask.ext.wtf import Form`` imports again.

Flask 1.0 removed the ``flask.ext`` namespace, where ``flask.ext.foo`` meant the extension package
``flask_foo``. DIGITS' plugins and its plugin tutorial still write ``from flask.ext.wtf import Form``.
:func:`install` puts a finder on ``sys.meta_path`` that answers those names and nothing else:

- ``flask.ext`` is an empty package of its own;
- ``flask.ext.wtf`` has Flask-WTF's public names, with ``Form`` a :class:`flask_wtf.FlaskForm` (in
  Flask-WTF 1.x ``flask_wtf.Form`` is WTForms' plain form, which reads no request data);
- ``flask.ext.<name>`` (and its submodules) is the installed ``flask_<name>`` module itself.

No file or attribute of Flask is changed; the import system binds ``ext`` on the ``flask`` module when
a plugin imports ``flask.ext``, as for any submodule.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types

PREFIX = "flask.ext"


def _form_class() -> type:
    from flask_wtf import FlaskForm

    class Form(FlaskForm):
        """The form class DIGITS' plugins subclass (Flask-WTF's form: it reads the request's data)."""

    Form.__module__, Form.__qualname__ = f"{PREFIX}.wtf", "Form"
    return Form


def _wtf_module(name: str) -> types.ModuleType:
    import flask_wtf

    module = types.ModuleType(name, "Flask-WTF's names as DIGITS' plugins import them from flask.ext.wtf.")
    for attr in getattr(flask_wtf, "__all__", ()):
        setattr(module, attr, getattr(flask_wtf, attr))
    module.Form = _form_class()
    module.__all__ = sorted({*getattr(flask_wtf, "__all__", ()), "Form"})
    # Submodules (flask.ext.wtf.file, .csrf, ...) are Flask-WTF's own.
    module.__path__ = []
    return module


class _MadeLoader(importlib.abc.Loader):
    """Loads a ``flask.ext`` module made here (``flask.ext`` itself, ``flask.ext.wtf``)."""

    def __init__(self, make):
        self.make = make

    def create_module(self, spec):
        return self.make(spec.name)

    def exec_module(self, module):
        pass  # complete when made


class _AliasLoader(importlib.abc.Loader):
    """Loads ``flask.ext.foo`` as the module ``flask_foo`` itself.

    The import system puts a placeholder under the name, then keeps what ``sys.modules`` holds after
    ``exec_module``: the real module goes there, untouched (its ``__spec__`` stays its own).
    """

    def create_module(self, spec):
        return None  # the default placeholder

    def exec_module(self, module):
        sys.modules[module.__name__] = _real_module(module.__name__)


def _package(name: str) -> types.ModuleType:
    module = types.ModuleType(name, "Flask's former extension namespace: flask.ext.foo is flask_foo.")
    module.__path__ = []
    return module


def _real_module(name: str) -> types.ModuleType:
    # flask.ext.foo.bar -> flask_foo.bar; flask.ext.wtf.file -> flask_wtf.file
    first, _, rest = name[len(PREFIX) + 1 :].partition(".")
    return importlib.import_module(f"flask_{first}" + (f".{rest}" if rest else ""))


class FlaskExtFinder(importlib.abc.MetaPathFinder):
    """Finds ``flask.ext`` and the names below it; every other import goes to the usual finders."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname == PREFIX:
            loader = _MadeLoader(_package)
        elif fullname == f"{PREFIX}.wtf":
            loader = _MadeLoader(_wtf_module)
        elif fullname.startswith(PREFIX + "."):
            first = fullname[len(PREFIX) + 1 :].partition(".")[0]
            if importlib.util.find_spec(f"flask_{first}") is None:
                return None  # ModuleNotFoundError names flask.ext.<first>, which the plugin wrote
            loader = _AliasLoader()
        else:
            return None
        return importlib.machinery.ModuleSpec(fullname, loader, is_package=True)


def install() -> None:
    """Make ``flask.ext.*`` importable in this process (once; calling again does nothing)."""
    if not any(isinstance(finder, FlaskExtFinder) for finder in sys.meta_path):
        sys.meta_path.append(FlaskExtFinder())
