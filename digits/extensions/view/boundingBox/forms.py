"""Options of the bounding box view."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import validators

from digits.utils import forms


class ConfigForm(FlaskForm):
    min_confidence = forms.FloatField(
        "Minimum confidence",
        default=0.0,
        validators=[validators.Optional()],
        tooltip="Boxes whose confidence (the last number of a box) is not above this are not drawn.",
    )
    line_width = forms.IntegerField(
        "Line width", default=2, validators=[validators.Optional(), validators.NumberRange(min=1, max=20)]
    )
