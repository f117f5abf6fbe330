"""Form fields and form-data helpers of our own forms (plugins import theirs from ``digits.utils.forms``)."""

from __future__ import annotations

from typing import Any

from werkzeug.datastructures import FileStorage, MultiDict
from wtforms import BooleanField, FileField, RadioField, SelectField
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
    """The fields a form was sent with, kept in ``job.json`` so Clone can show the form filled again.

    Uploaded files are not kept: a job keeps its own copy of what it needs from them.
    """
    fields: dict[str, Any] = {}
    for key, values in formdata.to_dict(flat=False).items():
        values = [v for v in values if not isinstance(v, FileStorage)]
        if key not in NOT_REPLAYED and values:
            fields[key] = values if len(values) > 1 else values[0]
    return fields


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


class Upload(FileField):
    """A file field whose data is the uploaded file, or None: text sent under its name is not a file."""

    def process_formdata(self, valuelist) -> None:
        self.data = next((v for v in valuelist if isinstance(v, FileStorage) and v.filename), None)
