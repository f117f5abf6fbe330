"""Data extensions: the entry point group plugins declare, and finding them (``get_extensions()``).

``GROUP`` is the name DIGITS' plugins import in their ``setup.py``::

    from digits.extensions.data import GROUP as DIGITS_PLUGIN_GROUP
    setup(..., entry_points={DIGITS_PLUGIN_GROUP: ["class=myPlugin:DataIngestion"]})
"""

from __future__ import annotations

from digits.extensions.catalog import Catalog, discover
from digits.extensions.data.interface import DataIngestionInterface, SkipEntry

__all__ = [
    "GROUP",
    "DataIngestionInterface",
    "SkipEntry",
    "builtin_extensions",
    "create_extension",
    "discover_data_extensions",
]

# Entry point group: the key plugins register under and DIGITS finds them by.
GROUP = "digits.plugins.data"

REQUIRED = (
    "get_id",
    "get_title",
    "get_category",
    "get_dataset_form",
    "get_dataset_template",
    "itemize_entries",
    "encode_entry",
)


def builtin_extensions() -> list[type]:
    """The data extensions shipped with DIGITS."""
    from digits.extensions.data import imageProcessing, imageSegmentation, objectDetection

    return [imageProcessing.DataIngestion, imageSegmentation.DataIngestion, objectDetection.DataIngestion]


def discover_data_extensions() -> Catalog:
    """Every data extension: the built-in ones and the installed plugins (broken ones set aside)."""
    return discover("data", GROUP, builtin_extensions, REQUIRED)


def create_extension(cls: type, fields: dict, is_inference_db: bool = False) -> DataIngestionInterface:
    """An instance of a data extension class from form fields (or a dataset's user data updated with an
    inference form's fields); an ``is_inference_db`` in ``fields`` (plugins keep it in their user data)
    is replaced by the argument."""
    return cls(**{**fields, "is_inference_db": is_inference_db})


def get_extensions() -> list[type]:
    """The classes of every usable data extension (DIGITS' function)."""
    return [e.cls for e in discover_data_extensions().extensions.values()]


def get_extension(extension_id: str) -> type | None:
    """The class of the data extension ``extension_id``, or None (DIGITS' function)."""
    extension = discover_data_extensions().get(extension_id)
    return extension.cls if extension else None
