"""What every job kind shares when a job is created from form data: the kind type, its forms, the errors.

A kind (a dataset kind, a model kind) is a type: its forms, the tasks a job of it runs, how its page
describes it. Creating a job is one function per family (``digits.datasets.create``,
``digits.models.create``) that takes plain form data, so views, tests and scripts create jobs the same
way. Nothing here imports Flask.
"""

from __future__ import annotations

from typing import Any

from werkzeug.datastructures import MultiDict
from wtforms import Form

from digits.form_fields import add_error


class FormInvalid(Exception):
    """Form data that did not validate: ``forms`` carry the field errors; nothing was created."""

    def __init__(self, *forms: Form):
        super().__init__("the form has errors")
        self.forms = forms

    @property
    def errors(self) -> dict[str, list[str]]:
        """Every form's field errors in one dict, as the ``.json`` routes answer them."""
        merged: dict[str, list[str]] = {}
        for form in self.forms:
            merged.update(form.errors)
        return merged


class FormProblem(Exception):
    """A problem found only once the form's files were read: reported on the field, like a form error."""

    def __init__(self, field, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


class JobKind:
    """A kind of job: what its user fills in and what a job of it looks like.

    Subclasses set ``id`` (kept in ``job.kind``), ``path`` (the URL under ``/datasets/`` or ``/models/``),
    ``title``, ``form`` (a WTForms form class; not Flask-WTF, so it works without a request) and
    ``template`` (the creation page).
    """

    id: str
    path: str
    title: str
    form: type[Form]
    template: str

    def forms(self, data: MultiDict | None = None, **context: Any) -> list[Form]:
        """The kind's forms, filled with ``data`` (empty: the defaults). The first holds the job's name."""
        return [self.form(formdata=data)]

    def validated(self, forms: list[Form]) -> list[Form]:
        """``forms`` once every one validated (each is validated, so all errors show); else :class:`FormInvalid`."""
        results = [self.validate(form) for form in forms]
        if not all(results):
            raise FormInvalid(*forms)
        return forms

    def validate(self, form: Form) -> bool:
        """Validate one of the kind's forms (a kind may guard forms that are not its own)."""
        return form.validate()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id}>"


def report_problem(forms: list[Form], problem: FormProblem) -> FormInvalid:
    """The :class:`FormInvalid` that shows a :class:`FormProblem` on its field."""
    add_error(problem.field, problem.message)
    return FormInvalid(*forms)


def as_multidict(data: MultiDict | dict[str, Any] | None) -> MultiDict:
    """Form data as WTForms reads it: a MultiDict; a plain dict's list values become repeated fields."""
    if data is None or isinstance(data, MultiDict):
        return data if data is not None else MultiDict()
    multi = MultiDict()
    for key, value in data.items():
        for item in value if isinstance(value, list | tuple) else [value]:
            multi.add(key, item)
    return multi
