"""The data extension interface: what a data plugin implements (``DataIngestion(DataIngestionInterface)``).

How DIGITS uses a data extension
--------------------------------
Creating a dataset (``/datasets/generic/new/<id>``, ``POST /datasets/generic/create/<id>[.json]``):

1. The web page shows ``get_dataset_template(get_dataset_form())`` inside the dataset page (name, group
   and storage options are DIGITS' own); the form is validated in the web process.
2. A child process (``python -m digits.tools.create_generic_db``, see the job's log for the exact command)
   creates the extension once with the form's data: ``DataIngestion(is_inference_db=False, **form.data)``,
   calls ``itemize_entries(stage)`` for ``train``, ``val`` and ``test``, then ``encode_entry(entry)``
   for every entry in worker processes forked from it (so entries and the instance reach the workers
   as they are, unpickled, and encode_entry may run in parallel with itself).
3. Each stage with entries becomes an LMDB database of records (features and labels, see
   :mod:`digits.records`); ``get_user_data()`` is saved with the dataset as ``extension_userdata.json``.

Inference (a model trained on such a dataset): ``DataIngestion(is_inference_db=True,
**dataset_user_data, **inference_form.data)`` builds a ``test`` database from
``get_inference_form()``'s fields the same way.

Anything an extension raises stops the job with the extension's traceback on the job page; the
extension's other datasets and every other extension keep working.
"""

from __future__ import annotations

from typing import Any


class SkipEntry(Exception):  # noqa: N818 - a signal, not an error: the name says what it does
    """Raise from ``encode_entry`` to leave an entry out: it is listed as skipped, with ``reason``, on the
    dataset page (a file that is not what it should be), and the database is built from the others."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class DataIngestionInterface:
    """A data extension (DIGITS' name): turns user input into (feature, label) arrays, entry by entry."""

    def __init__(self, is_inference_db: bool = False, **kwargs):
        """Create the extension for one dataset (or one inference database).

        Parameters:
        - is_inference_db: True when the instance builds a database for inference: then only the
          ``test`` stage is asked for, from the fields of ``get_inference_form()``.
        - kwargs: the fields of the dataset form (``form.data``), or for inference the dataset's user
          data updated with the inference form's fields.

        The default stores ``kwargs`` as ``self.userdata`` (what :meth:`get_user_data` returns and DIGITS
        keeps with the dataset) and sets each one as an attribute (``self.image_folder``...).
        Subclasses call ``super().__init__(**kwargs)`` first and may add to ``self.userdata`` (a random
        seed, a palette, class names): everything in it must be JSON-serializable.
        """
        self.is_inference_db = is_inference_db
        # Everything in userdata is kept with the dataset: no other attribute is persisted.
        self.userdata: dict[str, Any] = dict(kwargs)
        for key, value in self.userdata.items():
            setattr(self, key, value)

    def encode_entry(self, entry):
        """Read and convert one entry returned by :meth:`itemize_entries`.

        Returns ``(feature, label)``, or a list of such pairs when an entry yields several samples (an
        empty list yields none).
        - feature: a numpy array CHW (channels first, as DIGITS' plugins return them; colour in RGB
          order), or HxW for one channel. Any integer or float dtype: uint8 features can be stored as
          PNG/JPEG, others are stored raw with their dtype (int64 becomes int32, float64 float32).
        - label: an integer (a class), a float or a vector (regression targets; shape (N,), (1, 1, N) and
          the like), or an array CHW/HxW (a segmentation mask, a target image); None for no label.

        Every sample of a dataset must have the same feature shape and dtype and the same kind and shape
        of label. Raise :class:`SkipEntry` to leave out an unusable entry; any other exception stops the
        job with its traceback. Runs in a worker process: it must not rely on state it changes.
        """
        raise NotImplementedError

    @staticmethod
    def get_category() -> str:
        """The heading of the New Dataset menu the extension appears under (e.g. ``"Images"``)."""
        raise NotImplementedError

    @staticmethod
    def get_dataset_form():
        """A new form (a ``flask_wtf.FlaskForm``) with every field needed to create a dataset.

        Called inside a request: the form reads the submitted fields itself. Its ``data`` becomes the
        keyword arguments of ``__init__``.
        """
        raise NotImplementedError

    @staticmethod
    def get_dataset_template(form) -> tuple[str, dict]:
        """The HTML of the dataset form, to show inside DIGITS' dataset page.

        Parameters:
        - form: the form returned by :meth:`get_dataset_form`, filled when the page is shown again after
          an error or for a clone.
        Returns ``(template, context)``: ``template`` is Jinja source (usually a file of the plugin read
        into a string) or the path of a template file relative to the plugin's package folder;
        ``context`` holds the variables it uses (``{"form": form}``). The template may
        ``{% from "helper.html" import print_flashes, print_errors, mark_errors %}``; it renders inside
        DIGITS' ``<form>``, so it has no ``<form>`` tag nor submit button of its own.
        """
        raise NotImplementedError

    @staticmethod
    def get_default_visibility() -> bool:
        """Whether the extension is listed in the New Dataset menu (it stays usable by its URL)."""
        return True

    @staticmethod
    def get_id() -> str:
        """A unique id, used in URLs (``/datasets/generic/new/<id>``): letters, digits and dashes."""
        raise NotImplementedError

    def get_inference_form(self):
        """A new form with the fields needed to build an inference database, or None when the extension
        cannot provide inference data (then models use DIGITS' ordinary image inference)."""
        return None

    @staticmethod
    def get_inference_template(form) -> tuple[str | None, dict | None]:
        """Like :meth:`get_dataset_template`, for the form of :meth:`get_inference_form`.

        Returns ``(None, None)`` when there is no inference form.
        """
        return None, None

    @staticmethod
    def get_title() -> str:
        """The name shown in menus and on the dataset page (e.g. ``"Gradients"``)."""
        raise NotImplementedError

    def get_user_data(self) -> dict[str, Any]:
        """What DIGITS keeps with the dataset (JSON-serializable): by default ``self.userdata``.

        It is handed back to ``__init__`` for inference, and to view extensions as
        ``dataset.extension_userdata`` (``class_labels``, ``digits.utils.constants.COLOR_PALETTE_ATTRIBUTE``).
        """
        return self.userdata

    def itemize_entries(self, stage: str) -> list:
        """The entries of one stage (``"train"``, ``"val"`` or ``"test"``, see ``digits.utils.constants``).

        An entry is anything that identifies one sample for :meth:`encode_entry`: a file name, a tuple
        of paths, a pair of numbers. Return an empty list for a stage the dataset does not have.
        Called once per stage, in order train, val, test, on the same instance, before any entry is
        encoded. The database keeps the order of the list: shuffle it here if that matters.
        """
        raise NotImplementedError
