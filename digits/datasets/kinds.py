"""The dataset kind type and the one path that creates a dataset job from form data."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from werkzeug.datastructures import MultiDict
from wtforms import Form

from digits.form_fields import replayable_data
from digits.jobs import Job, JobStore, Task, new_job_id
from digits.jobs.creation import FormProblem, JobKind, as_multidict, report_problem


class DatasetKind(JobKind):
    """A kind of dataset: its forms, the tasks that build it, and how its page describes it."""

    template = "datasets/new.html"

    def forms(self, data: MultiDict | None = None, *, roots: Sequence[Path] = (), **context: Any) -> list[Form]:
        """The kind's form filled with ``data``; the server paths it names must lie in the data ``roots``."""
        form = self.form(formdata=data)
        form.roots = roots
        return [form]

    def build_tasks(self, forms: list[Form], staging: Path) -> list[Task]:
        """The tasks of a new dataset; files they need (uploads, lists) are written into ``staging``.

        May raise :class:`FormProblem` for what only reading the files shows.
        """
        raise NotImplementedError

    def describe(self, job: Job, skipped_page: int = 1) -> dict[str, Any]:
        """What the dataset's page and ``/datasets/<id>.json`` show, from its tasks' results and files
        (of the skipped entries: ``skipped_total`` and the page ``skipped_page`` of them)."""
        raise NotImplementedError

    def info(self, job: Job):
        """The dataset as models and view extensions see it: a ``digits.datasets.generic.DatasetInfo``."""
        raise NotImplementedError

    def form_record(self, data: MultiDict) -> dict[str, Any]:
        """What ``job.form`` keeps of the data, so Clone can fill the forms again."""
        return replayable_data(data)

    @staticmethod
    def workers() -> int:
        """Worker processes a database tool may start."""
        return os.cpu_count() or 1


def create(
    store: JobStore, kind: DatasetKind, data: MultiDict | dict, owner: str, *, roots: Sequence[Path]
) -> list[Job]:
    """Validate ``data`` (form fields and uploaded files) for ``kind`` and add the dataset job to ``store``.

    Server paths the data names (folders, list files, databases) must lie in the data ``roots``.

    The job's files are written in a staging directory that becomes the job only once complete. Returns
    the new job in a list (as ``digits.models.create`` does); it is not yet submitted to a scheduler.
    Raises :class:`~digits.jobs.creation.FormInvalid` with the forms' errors; then nothing is created.
    """
    data = as_multidict(data)
    forms = kind.validated(kind.forms(data, roots=roots))
    job_id = new_job_id()
    try:
        with store.staging(job_id) as staging:
            job = Job(
                id=job_id,
                type="dataset",
                kind=kind.id,
                name=forms[0].dataset_name.data.strip(),
                group=(forms[0].group_name.data or "").strip(),
                username=owner,
                directory=str(staging),
                form=kind.form_record(data),
                tasks=kind.build_tasks(forms, staging),
            )
            store.add(job, staging)
    except FormProblem as problem:
        raise report_problem(forms, problem) from None
    return [job]
