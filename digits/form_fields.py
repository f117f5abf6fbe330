"""Form pieces shared by every kind of job."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict
from wtforms import BooleanField, RadioField, SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import ValidationError

# Scripts send "0", "no" or "off" for unchecked boxes as often as they leave the field out.
FALSE_VALUES = ("false", "False", "0", "no", "off", "")


def add_error(field, message: str) -> None:
    """Report ``message`` on ``field`` after validation (checks that need more than the field itself)."""
    field.errors = [*field.errors, message]


def checked(value: Any) -> bool:
    """Whether a checkbox value kept in ``job.form`` (a string, or absent) means "on"."""
    return value is not None and value not in FALSE_VALUES


class Checkbox(BooleanField):
    """A BooleanField that reads ``0``/``no``/``off`` as false, as scripts send them."""

    false_values = FALSE_VALUES


NOT_REPLAYED = ("csrf_token", "username", "create")


def replayable_data(formdata: MultiDict) -> dict[str, Any]:
    """The fields a form was sent with, kept in ``job.json`` so Clone can show the form filled again."""
    return {k: v if len(v) > 1 else v[0] for k, v in formdata.to_dict(flat=False).items() if k not in NOT_REPLAYED}


def replay(form_class: type[FlaskForm], data: dict[str, Any]) -> FlaskForm:
    """A form filled with data from :func:`replayable_data`."""
    formdata = MultiDict()
    for key, value in data.items():
        for item in value if isinstance(value, list) else [value]:
            formdata.add(key, item)
    return form_class(formdata=formdata)


class _NamesValidChoices:
    """A choice field built from ``(value, label)`` pairs whose error names the value sent and those accepted."""

    def __init__(self, label=None, validators=None, choices=(), **kwargs):
        super().__init__(label, validators, choices=[SelectChoice(v, text) for v, text in choices], **kwargs)

    def pre_validate(self, form) -> None:
        if not self.validate_choice:
            return
        values = [str(value) for value, *_ in self.choices]  # SelectChoice or (value, label)
        if str(self.data) not in values:
            raise ValidationError(f"{self.data!r} is not a valid choice; use one of: {', '.join(values)}.")


class Choice(_NamesValidChoices, SelectField):
    pass


class RadioChoice(_NamesValidChoices, RadioField):
    pass
