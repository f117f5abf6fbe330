"""Options of the image segmentation view (DIGITS' ``colormap``, and the overlay's opacity)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import validators

from digits.utils import forms


class ConfigForm(FlaskForm):
    colormap = forms.SelectField(
        "Colormap",
        choices=[("dataset", "From the dataset"), ("paired", "Paired"), ("none", "None (grayscale)")],
        default="dataset",
        tooltip="The colours of the classes: the dataset's palette (when it has one), a fixed set of "
        "distinct colours, or gray levels.",
    )
    opacity = forms.IntegerField(
        "Opacity (%)",
        default=50,
        validators=[validators.Optional(), validators.NumberRange(min=0, max=100)],
        tooltip="How strongly the classes' colours cover the image (the page has a slider too).",
    )
