"""Config forms shared by the built-in views."""

from __future__ import annotations

from flask_wtf import FlaskForm


class NoConfigForm(FlaskForm):
    """A view without options."""
