"""WTForms fields and validators with the names DIGITS' plugins use (``digits.utils.forms``).

Every field takes DIGITS' ``tooltip=`` keyword: ``{{ form.x.tooltip }}`` renders a help icon in a
plugin's template, and the text doubles as the field's description (which our ``form_row`` shows).
DIGITS' ``explanation_file=`` (a help page among DIGITS' own templates) is accepted and kept as
``field.explanation_file``; ``{{ form.x.explanation }}`` renders nothing, as those pages are not here.

The names, as DIGITS had them: ``StringField`` (and its old name ``TextField``), ``TextAreaField``,
``IntegerField``, ``FloatField``, ``DecimalField``, ``BooleanField``, ``SelectField``,
``SelectMultipleField``, ``RadioField``, ``FileField``, ``MultiIntegerField`` and ``MultiFloatField``
(comma lists), the validators ``validate_required_iff``, ``validate_required_if_set``,
``validate_greater_than``, ``MultiNumberRange`` and ``MultiOptional``.
"""

from __future__ import annotations

from markupsafe import Markup, escape
from werkzeug.datastructures import FileStorage
from wtforms import fields, validators, widgets
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
    def __init__(self, *args, tooltip: str = "", explanation_file: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.tooltip = Tooltip(self.id, tooltip)
        self.explanation_file = explanation_file
        self.explanation = Markup("")
        if tooltip and not self.description:
            self.description = tooltip


class StringField(_TooltipMixin, fields.StringField):
    pass


# WTForms 3 dropped the name TextField; DIGITS-era plugins still use it.
TextField = StringField


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


class _MultiNumber(_TooltipMixin, fields.Field):
    """A text field holding one number or a comma list of them (``data`` is always a list)."""

    widget = widgets.TextInput()
    convert: type = float
    message = "Not a valid number"

    def __init__(self, *args, tooltip: str = "", **kwargs):
        super().__init__(*args, tooltip=tooltip + " (accepts a comma list)" if tooltip else "", **kwargs)
        self.small_text = "multiples allowed"

    def process_data(self, value):
        values = value if isinstance(value, list | tuple) else [] if value is None else [value]
        self.data = [self.convert(v) for v in values]

    def process_formdata(self, valuelist):
        if not valuelist:
            return
        text = str(valuelist[0]).replace("[", "").replace("]", "")
        try:
            self.data = [self.convert(float(part)) for part in text.split(",") if part.strip()]
        except ValueError:
            self.data = []
            raise ValueError(self.gettext(self.message)) from None

    def _value(self) -> str:
        if self.raw_data:
            return str(self.raw_data[0])
        return ",".join(str(v) for v in self.data or [])

    def data_array(self) -> list:
        return list(self.data or [])


class MultiIntegerField(_MultiNumber):
    convert = int
    message = "Not a valid integer value"


class MultiFloatField(_MultiNumber):
    convert = float
    message = "Not a valid float value"


class MultiNumberRange:
    """Every number of a comma-list field lies in ``[min, max]`` (bounds exclusive when told)."""

    def __init__(self, min=None, max=None, min_inclusive=True, max_inclusive=True, message=None):
        self.min, self.max = min, max
        self.min_inclusive, self.max_inclusive = min_inclusive, max_inclusive
        self.message = message

    def __call__(self, form, field):
        values = field.data if isinstance(field.data, list | tuple) else [field.data]
        for value in values or [None]:
            if value is None:
                problem = "No data."
            elif self.min is not None and (value < self.min if self.min_inclusive else value <= self.min):
                problem = f"Number {value} must be {'at least' if self.min_inclusive else 'greater than'} {self.min}."
            elif self.max is not None and (value > self.max if self.max_inclusive else value >= self.max):
                problem = f"Number {value} must be {'at most' if self.max_inclusive else 'less than'} {self.max}."
            else:
                continue
            raise validators.ValidationError(self.message or problem)


class MultiOptional:
    """An empty comma-list field is allowed, and stops its other validators (and clears their errors)."""

    field_flags = {"optional": True}

    def __call__(self, form, field):
        raw = field.raw_data[0] if field.raw_data else ""
        if not str(raw).strip():
            field.errors[:] = []
            raise validators.StopValidation()


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
    """The field's value must not be less than ``other_field``'s (when both are set); equal passes, as in
    DIGITS (a maximum equal to the minimum)."""

    def _validator(form, field):
        other = form[other_field].data
        if field.data not in (None, "") and other is not None and field.data < other:
            raise validators.ValidationError(f"Must be greater than {form[other_field].label.text}.")

    return _validator
