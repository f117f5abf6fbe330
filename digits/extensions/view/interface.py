"""The view extension interface: what a visualization plugin implements (``Visualization(VisualizationInterface)``).

How DIGITS uses a view extension
--------------------------------
On a model's page the user picks a view and fills its ``get_config_form()`` (rendered with
``get_config_template``). When inference results arrive, DIGITS (in the web process):

1. creates ``Visualization(dataset, **config_form.data)`` — ``dataset`` describes the model's dataset
   (``dataset.get_feature_dims()`` is ``[H, W, C]``, ``dataset.extension_userdata`` the data
   extension's user data, ``dataset.extension_id``, ``dataset.labels``);
2. calls ``process_data(input_id, input_data, inference_data, ground_truth)`` once per sample, then
   renders ``get_view_template(data)`` with what it returned;
3. renders ``get_header_template()`` once above the results, and ``get_summary_template()`` after them;
   ``get_ng_templates()`` may wrap all of it (DIGITS 6 used it for AngularJS apps).

Arrays handed to ``process_data``: ``input_data`` is the network's input image as a numpy array, HxW for
one channel or HxWxC (uint8 when the dataset's images are 8-bit); ``inference_data`` is a dict
``{output name: array}`` for that one sample, where image-like (3-D) outputs are CHW as DIGITS passed
them. A view raising stops only its own rendering: the page says which view failed and why.

Templates are Jinja source strings (or paths relative to the plugin's package folder) and may
``{% from "helper.html" import print_flashes, print_errors, mark_errors %}``. Static files under the
plugin's ``static/`` folder are served at ``/extensions/view/<id>/static/<path>``.
"""

from __future__ import annotations

import inspect
import os
from typing import Any


class VisualizationInterface:
    """A view extension (DIGITS' name): turns one inference output into HTML."""

    def __init__(self, dataset=None, **kwargs):
        """Create the view for one set of results.

        Parameters:
        - dataset: the dataset the model was trained on (see the module docstring for what it offers).
        - kwargs: the fields of the config form (``form.data``).
        """
        self.dataset = dataset
        self.config = dict(kwargs)

    @staticmethod
    def get_config_form():
        """A new form (``flask_wtf.FlaskForm``) of the view's options; an empty form when it has none."""
        raise NotImplementedError

    @staticmethod
    def get_config_template(form) -> tuple[str, dict]:
        """The HTML of the config form.

        Parameters:
        - form: the form returned by :meth:`get_config_form`, filled when shown again.
        Returns ``(template, context)``: Jinja source (or a path relative to the plugin's package folder)
        and the variables it uses. Rendered inside DIGITS' ``<form>``.
        """
        raise NotImplementedError

    @staticmethod
    def get_default_visibility() -> bool:
        """Whether the view is offered in the list of views (it stays usable by its id)."""
        return True

    def get_header_template(self) -> tuple[str | None, dict | None]:
        """Content shown once above the results: a summary of them, or scripts and styles the view
        templates use. Called after every sample went through :meth:`process_data`.

        Returns ``(template, context)``, or ``(None, None)`` (the default) for no header.
        """
        return None, None

    def get_ng_templates(self) -> tuple[str | None, str | None]:
        """HTML opening (``header``) and closing (``footer``) around the whole result, in DIGITS 6 the
        AngularJS app and controller the views use. ``(None, None)`` (the default) when not needed."""
        return None, None

    @staticmethod
    def get_id() -> str:
        """A unique id (letters, digits and dashes), used in forms and URLs."""
        raise NotImplementedError

    @staticmethod
    def get_title() -> str:
        """The name shown in the list of views."""
        raise NotImplementedError

    @classmethod
    def get_dirname(cls) -> str:
        """The name of the folder holding the extension's module (where ``static/`` is looked for)."""
        return os.path.basename(os.path.dirname(os.path.abspath(inspect.getfile(cls))))

    def get_summary_template(self) -> tuple[str | None, dict | None]:
        """Content shown once below the results, after every sample was processed.

        Returns ``(template, context)``, or ``(None, None)`` (the default) for none.
        """
        return None, None

    def get_view_template(self, data: Any) -> tuple[str, dict]:
        """The HTML of one processed sample.

        Parameters:
        - data: what :meth:`process_data` returned for the sample.
        Returns ``(template, context)``.
        """
        raise NotImplementedError

    def process_data(self, input_id, input_data, inference_data, ground_truth=None) -> Any:
        """Process one inference output; returns whatever :meth:`get_view_template` needs.

        Parameters:
        - input_id: the sample's id (its index, path or database key).
        - input_data: the network's input, a numpy array HxW or HxWxC.
        - inference_data: ``{output name: numpy array}`` for this sample (3-D outputs CHW).
        - ground_truth: the sample's label when known (its format is the dataset's), else None.
        """
        raise NotImplementedError
