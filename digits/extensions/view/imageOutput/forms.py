"""Options of the image output view (DIGITS' field names)."""

from __future__ import annotations

from flask_wtf import FlaskForm

from digits.utils import forms


class ConfigForm(FlaskForm):
    channel_order = forms.SelectField(
        "Channel order",
        choices=[("rgb", "RGB"), ("bgr", "BGR")],
        default="rgb",
        tooltip="BGR for networks trained on BGR images (ignored for grayscale output).",
    )
    pixel_conversion = forms.SelectField(
        "Pixel conversion",
        choices=[("normalize", "Normalize"), ("clip", "Clip")],
        default="normalize",
        tooltip="Stretch the output's range to 0-255, or clip it to 0-255.",
    )
    show_input = forms.BooleanField("Show the input beside the output", default=True)
