"""Extensions in the web app: found once at start, their templates rendered, their static files served.

``init_app(app)`` discovers both kinds (a plugin installed later appears after a restart, as the plugin
tutorial says), keeps them as ``app.extensions["digits.plugins"]`` and lets Jinja find a plugin's
templates under ``extensions/<kind>/<id>/<path in the plugin's package folder>``, next to DIGITS' own
(``helper.html`` for the macros plugins import).
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, abort, current_app, render_template, render_template_string, send_from_directory
from jinja2 import BaseLoader, ChoiceLoader, FileSystemLoader, Template, TemplateNotFound
from markupsafe import Markup

from digits.extensions.catalog import Catalog, Extension
from digits.extensions.data import discover_data_extensions
from digits.extensions.view import discover_view_extensions

blueprint = Blueprint("extensions", __name__)

KINDS = ("data", "view")
TEMPLATE_SUFFIXES = (".html", ".htm", ".jinja", ".j2", ".txt")


@dataclass
class Plugins:
    """The app's data and view extensions."""

    data: Catalog
    view: Catalog

    def catalog(self, kind: str) -> Catalog:
        if kind not in KINDS:
            raise KeyError(kind)
        return self.data if kind == "data" else self.view

    def to_dict(self) -> dict[str, Any]:
        return {"data": self.data.to_dict(), "view": self.view.to_dict()}


class ExtensionError(Exception):
    """An extension raised while the web process used it; ``traceback`` is the extension's."""

    def __init__(self, extension: Extension, doing: str, exc: BaseException):
        super().__init__(f"The {extension.kind} extension {extension.title} ({extension.id}) failed: "
                         f"{doing} raised {type(exc).__name__}: {exc}")  # fmt: skip
        self.extension = extension
        self.doing = doing
        self.marked_broken = False
        self.traceback = "".join(traceback.format_exception(exc))


class ExtensionLoader(BaseLoader):
    """Finds ``extensions/<kind>/<id>/<path>`` in the folder of the extension's module."""

    def __init__(self, plugins: Plugins):
        self.plugins = plugins

    def get_source(self, environment, template: str):
        parts = template.split("/", 3)
        if len(parts) != 4 or parts[0] != "extensions" or parts[1] not in KINDS:
            raise TemplateNotFound(template)
        extension = self.plugins.catalog(parts[1]).get(parts[2])
        if extension is None:
            raise TemplateNotFound(template)
        return FileSystemLoader(str(extension.directory)).get_source(environment, parts[3])


def init_app(app) -> Plugins:
    """Discover the extensions, make their templates and static files reachable; returns them."""
    plugins = Plugins(discover_data_extensions(), discover_view_extensions())
    app.extensions["digits.plugins"] = plugins
    app.jinja_loader = ChoiceLoader([app.jinja_loader, ExtensionLoader(plugins)])
    app.register_blueprint(blueprint)
    app.context_processor(lambda: {"plugins": plugins})
    return plugins


def current_plugins() -> Plugins:
    """The running app's extensions (inside a request)."""
    return current_app.extensions["digits.plugins"]


def _template_file(extension: Extension, template: str) -> str | None:
    # A short string naming a file of the plugin is a template path; anything else is Jinja source.
    if "\n" in template or not template.strip().endswith(TEMPLATE_SUFFIXES) or "{" in template:
        return None
    path = (extension.directory / template.strip()).resolve()
    if not path.is_file() or extension.directory not in path.parents:
        return None
    return f"extensions/{extension.kind}/{extension.id}/{path.relative_to(extension.directory).as_posix()}"


def render_extension_template(extension: Extension, template: str | Template | None, context: dict | None) -> Markup:
    """Render what an extension's ``get_*_template`` returned: Jinja source, a template path or object."""
    if template is None:
        return Markup("")
    context = dict(context or {})
    if isinstance(template, Template):
        return Markup(template.render(**context))
    name = _template_file(extension, template)
    if name:
        return Markup(render_template(name, **context))
    return Markup(render_template_string(template, **context))


def call_extension(extension: Extension, doing: str, function, *args, mark_broken: bool = True, **kwargs):
    """Call an extension's method; whatever it raises becomes an :class:`ExtensionError`, and (with
    ``mark_broken``) the extension is listed as broken until the server restarts, so menus say why."""
    try:
        return function(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - a plugin's bug must not take the page or the server down
        if mark_broken:
            current_plugins().catalog(extension.kind).mark_broken(extension.id, exc, doing)
        error = ExtensionError(extension, doing, exc)
        error.marked_broken = mark_broken
        raise error from exc


def chosen_view(view_id: str, values, missing_status: int = 404) -> tuple[Extension, Any, dict[str, Any]]:
    """The view extension ``view_id``, its config form (filled from ``values`` when they name its fields)
    and the config that form gives; a ``missing_status`` error when no such view is usable."""
    catalog = current_plugins().view
    extension = catalog.get(view_id)
    if extension is None:
        reason = catalog.broken_reason(view_id)
        installed = ", ".join(catalog.extensions)
        abort(missing_status, description=f"View {view_id!r} is broken: {reason}" if reason
              else f"No view extension {view_id!r}; there are {installed}.")  # fmt: skip
    form = call_extension(extension, "get_config_form()", extension.cls.get_config_form)
    if form is not None and any(name in values for name in form._fields):
        call_extension(extension, "filling its form", form.process, values)
    config = {k: v for k, v in (form.data.items() if form is not None else []) if k != "csrf_token"}
    return extension, form, config


def render_dataset_form(extension: Extension, form) -> Markup:
    """A data extension's dataset form as HTML (``get_dataset_template``)."""
    template, context = call_extension(extension, "get_dataset_template()", extension.cls.get_dataset_template, form)
    return call_extension(extension, "rendering its template", render_extension_template, extension, template, context)


def render_config_form(extension: Extension, form) -> Markup:
    """A view extension's config form as HTML (``get_config_template``)."""
    template, context = call_extension(extension, "get_config_template()", extension.cls.get_config_template, form)
    return call_extension(extension, "rendering its template", render_extension_template, extension, template, context)


@dataclass
class RenderedView:
    """A view extension's HTML for a set of inference results."""

    items: list[Markup] = field(default_factory=list)  # one per sample, in order
    header: Markup = Markup("")
    summary: Markup = Markup("")
    app_begin: Markup = Markup("")  # get_ng_templates(): open before the header, close after the summary
    app_end: Markup = Markup("")


def render_view(extension: Extension, dataset, config: dict[str, Any], samples: Iterable[tuple]) -> RenderedView:
    """Run a view extension over inference results; returns its HTML.

    ``dataset`` is what the view gets in ``__init__`` (:func:`digits.datasets.generic.dataset_info`),
    ``config`` its config form's data, ``samples`` ``(input_id, input_data, {output name: array}, ground
    truth or None)`` tuples, arrays as the view interface documents them. Raises ExtensionError; the view
    stays usable (the results, not the view, may be what is wrong: a view for other outputs).
    """

    def call(doing, function, *args, **kwargs):
        return call_extension(extension, doing, function, *args, mark_broken=False, **kwargs)

    view = call("__init__", extension.cls, dataset, **config)
    rendered = RenderedView()
    for input_id, input_data, outputs, ground_truth in samples:
        data = call("process_data()", view.process_data, input_id, input_data, outputs, ground_truth)
        template, context = call("get_view_template()", view.get_view_template, data)
        rendered.items.append(call("rendering its view template", render_extension_template, extension, template,
                                   context))  # fmt: skip
    for name, method in (("header", view.get_header_template), ("summary", view.get_summary_template)):
        template, context = call(f"get_{name}_template()", method)
        setattr(rendered, name, call(f"rendering its {name} template", render_extension_template, extension,
                                     template, context))  # fmt: skip
    begin, end = call("get_ng_templates()", view.get_ng_templates)
    rendered.app_begin, rendered.app_end = Markup(begin or ""), Markup(end or "")
    return rendered


def _static(extension: Extension | None, filename: str):
    if extension is None:
        abort(404, description="No such extension.")
    folder = extension.directory / "static"
    if not folder.is_dir():
        abort(404, description=f"The extension {extension.id} has no static files.")
    return send_from_directory(folder, filename, max_age=0)


@blueprint.route("/extensions/<kind>/<extension_id>/static/<path:filename>")
def static_file(kind: str, extension_id: str, filename: str):
    """A file of the extension's ``static/`` folder."""
    if kind not in KINDS:
        abort(404, description=f"Extension kinds are {', '.join(KINDS)}.")
    return _static(current_plugins().catalog(kind).get(extension_id), filename)


@blueprint.route("/models/extension-static/<extension_id>/<path:filename>")
def digits_static_file(extension_id: str, filename: str):
    """DIGITS 6's URL of a view (or data) extension's static file, for plugins that hard-code it."""
    plugins = current_plugins()
    return _static(plugins.view.get(extension_id) or plugins.data.get(extension_id), filename)


@blueprint.route("/extensions.json")
def list_extensions():
    """Every data and view extension, and the broken ones with the reason."""
    return current_plugins().to_dict()
