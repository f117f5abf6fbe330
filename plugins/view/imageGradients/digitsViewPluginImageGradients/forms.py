"""The options of the gradients view: the arrow's colour and length."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import validators

from digits.utils import forms, subclass

COLORS = {"red": (230, 25, 75), "green": (60, 180, 75), "blue": (0, 130, 200)}


@subclass
class ConfigForm(FlaskForm):
    """How the predicted gradient is drawn."""

    arrow_color = forms.SelectField(
        "Arrow color",
        choices=[(name, name.capitalize()) for name in COLORS],
        default="red",
    )
    arrow_size = forms.IntegerField(
        "Arrow size (%)",
        default=80,
        validators=[validators.DataRequired("Enter the arrow's length in percent."), validators.NumberRange(min=1)],
        tooltip="At 100 the arrow is as long as the gradient: half the image across at the steepest slope (0.5).",
    )
