"""WTForms fields and validators with the names DIGITS' plugins use (``digits.utils.forms``).

Every field takes DIGITS' ``tooltip=`` keyword: ``{{ form.x.tooltip }}`` renders a help icon in a
plugin's template, and the text doubles as the field's description (which our ``form_row`` shows).
"""

from __future__ import annotations

from markupsafe import Markup, escape
from werkzeug.datastructures import FileStorage
from wtforms import fields, validators
from wtforms.fields.choices import SelectChoice


class Tooltip:
    """A field's help text: ``str()`` is the text, rendering it in a template gives a help icon."""

    def __init__(self, field_id: str, text: str):
        self.field_id = field_id
        self.text = text

    def __str__(self) -> str:
        return self.text

    def __bool__(self) -> bool:
        return bool(self.text)

    def __html__(self) -> str:
        if not self.text:
            return ""
        return Markup(
            f'<span class="help-icon" name="{escape(self.field_id)}_explanation" tabindex="0" '
            f'data-bs-toggle="tooltip" data-bs-placement="right" title="{escape(self.text)}" '
            f'aria-label="Help: {escape(self.text)}">?</span>'
        )

    __call__ = __html__


class _TooltipMixin:
    def __init__(self, *args, tooltip: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.tooltip = Tooltip(self.id, tooltip)
        if tooltip and not self.description:
            self.description = tooltip


class StringField(_TooltipMixin, fields.StringField):
    pass


class TextAreaField(_TooltipMixin, fields.TextAreaField):
    pass


class IntegerField(_TooltipMixin, fields.IntegerField):
    pass


class FloatField(_TooltipMixin, fields.FloatField):
    pass


class DecimalField(_TooltipMixin, fields.DecimalField):
    pass


class BooleanField(_TooltipMixin, fields.BooleanField):
    # Scripts send "0", "no" or "off" for unchecked boxes as often as they leave the field out.
    false_values = ("false", "False", "0", "no", "off", "")


class _Choices(_TooltipMixin):
    # DIGITS' plugins give choices as (value, label) pairs, which WTForms 3.3 deprecates.
    def __init__(self, *args, choices=None, **kwargs):
        if isinstance(choices, list | tuple):
            choices = [SelectChoice(*c) if isinstance(c, tuple | list) else c for c in choices]
        super().__init__(*args, choices=choices, **kwargs)


class SelectField(_Choices, fields.SelectField):
    pass


class SelectMultipleField(_Choices, fields.SelectMultipleField):
    pass


class RadioField(_Choices, fields.RadioField):
    pass


class FileField(_TooltipMixin, fields.FileField):
    pass


def _is_empty(data) -> bool:
    if data is None:
        return True
    if isinstance(data, str):
        return not data.strip()
    if isinstance(data, FileStorage):
        return not (data.filename or "").strip()
    return False


def validate_required_iff(**conditions):
    """The field is required when every other field named in ``conditions`` has the given value.

    Otherwise the field is optional and its other validators do not run.
    ``validate_required_iff(has_val_folder=True)``, as in DIGITS.
    """

    def _validator(form, field):
        if all(form[name].data == value for name, value in conditions.items()):
            if _is_empty(field.data):
                raise validators.ValidationError("This field is required.")
        else:
            field.errors[:] = []
            raise validators.StopValidation()

    return _validator


def validate_required_if_set(other_field: str, **conditions):
    """The field is required when ``other_field`` has a value (and ``conditions`` hold, as above)."""

    def _validator(form, field):
        if not _is_empty(form[other_field].data) and all(form[n].data == v for n, v in conditions.items()):
            if _is_empty(field.data):
                raise validators.ValidationError(f"This field is required if {other_field} is set.")
        else:
            field.errors[:] = []
            raise validators.StopValidation()

    return _validator


def validate_greater_than(other_field: str):
    """The field's value must be greater than ``other_field``'s (when both are set)."""

    def _validator(form, field):
        other = form[other_field].data
        if field.data is not None and other is not None and not field.data > other:
            raise validators.ValidationError(f"Must be greater than {form[other_field].label.text}.")

    return _validator
