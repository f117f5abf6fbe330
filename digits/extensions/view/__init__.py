"""View extensions: the entry point group plugins declare, and finding them (``get_extensions()``).

``GROUP`` is the name DIGITS' plugins import in their ``setup.py``::

    from digits.extensions.view import GROUP as DIGITS_PLUGIN_GROUP
    setup(..., entry_points={DIGITS_PLUGIN_GROUP: ["class=myViewPlugin:Visualization"]})
"""

from __future__ import annotations

from digits.extensions.catalog import Catalog, discover
from digits.extensions.view.interface import VisualizationInterface

__all__ = ["DEFAULT_EXTENSION_ID", "GROUP", "VisualizationInterface", "builtin_extensions", "discover_view_extensions"]

# Entry point group: the key plugins register under and DIGITS finds them by.
GROUP = "digits.plugins.view"

# The view used when a request names none: the raw output arrays.
DEFAULT_EXTENSION_ID = "all-raw-data"

REQUIRED = ("get_id", "get_title", "get_config_form", "get_config_template", "get_view_template", "process_data")


def builtin_extensions() -> list[type]:
    """The view extensions shipped with DIGITS."""
    from digits.extensions.view import boundingBox, imageOutput, imageSegmentation, rawData

    return [
        rawData.Visualization,
        imageOutput.Visualization,
        imageSegmentation.Visualization,
        boundingBox.Visualization,
    ]


def discover_view_extensions() -> Catalog:
    """Every view extension: the built-in ones and the installed plugins (broken ones set aside)."""
    return discover("view", GROUP, builtin_extensions, REQUIRED)


def get_default_extension() -> type:
    """The class of the default view (raw data), as DIGITS' function."""
    from digits.extensions.view import rawData

    return rawData.Visualization


def get_extensions() -> list[type]:
    """The classes of every usable view extension (DIGITS' function)."""
    return [e.cls for e in discover_view_extensions().extensions.values()]


def get_extension(extension_id: str) -> type | None:
    """The class of the view extension ``extension_id``, or None (DIGITS' function)."""
    extension = discover_view_extensions().get(extension_id)
    return extension.cls if extension else None
