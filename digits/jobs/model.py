"""The job and task records: plain data, saved as JSON, no behaviour that needs Flask or a process."""

from __future__ import annotations

import secrets
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any


class Status:
    """DIGITS' status names; they appear in JSON answers that users' scripts poll."""

    INITIALIZED = "Initialized"
    WAITING = "Waiting"
    RUNNING = "Running"
    DONE = "Done"
    ABORTED = "Aborted"
    ERROR = "Error"

    ACTIVE = (INITIALIZED, WAITING, RUNNING)
    FINISHED = (DONE, ABORTED, ERROR)


INTERRUPTED_MESSAGE = "Interrupted: the server stopped while this ran. Clone the job to run it again."


def new_job_id() -> str:
    """An id like DIGITS' ``20160809-103210-ccbf``: sortable by creation time."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


@dataclass
class Task:
    """One child process of a job: which tool it runs, what it needs, and how it went."""

    id: str
    name: str
    tool: str  # module run as ``python -m <tool>``
    args: list[str]
    resources: dict[str, Any] = field(default_factory=lambda: {"cpu": 1})
    depends_on: list[str] = field(default_factory=list)
    status: str = Status.INITIALIZED
    progress: float = 0.0
    eta: float | None = None
    started: float | None = None
    finished: float | None = None
    waiting_for: str | None = None
    assigned: dict[str, Any] = field(default_factory=dict)
    error: dict[str, str] | None = None
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def log_name(self) -> str:
        return f"{self.id}.log"

    def command(self, python: str) -> list[str]:
        """The command line that runs this task; the same line works by hand from the job directory."""
        return [python, "-m", self.tool, *self.args]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Task:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class Job:
    """A dataset, model or pretrained model: its form, its tasks and its status history."""

    id: str
    type: str  # "dataset", "model" or "pretrained"
    kind: str  # e.g. "image-classification": picks the form, tasks and page of the job
    name: str
    username: str
    directory: str
    created: float = field(default_factory=time.time)
    group: str = ""
    notes: str = ""
    form: dict[str, Any] = field(default_factory=dict)
    tasks: list[Task] = field(default_factory=list)
    depends_on_jobs: list[str] = field(default_factory=list)
    status_history: list[tuple[str, float]] = field(default_factory=list)
    interrupted: bool = False

    @property
    def status(self) -> str:
        return self.status_history[-1][0] if self.status_history else Status.INITIALIZED

    def task(self, task_id: str) -> Task:
        return next(t for t in self.tasks if t.id == task_id)

    def derived_status(self) -> str:
        """The job's status as its tasks' statuses imply it."""
        states = [t.status for t in self.tasks]
        if not states:
            return Status.INITIALIZED
        if Status.RUNNING in states:
            return Status.RUNNING
        if Status.ERROR in states:
            return Status.ERROR
        if Status.ABORTED in states:
            return Status.ABORTED
        if all(s == Status.DONE for s in states):
            return Status.DONE
        if Status.WAITING in states:
            # Between two tasks a job is still running, as its user sees it; its next task says what it waits for.
            return Status.RUNNING if Status.DONE in states else Status.WAITING
        return Status.INITIALIZED

    def record_status(self) -> bool:
        """Append the derived status to the history if it changed; True when it did."""
        status = self.derived_status()
        if status == self.status and self.status_history:
            return False
        self.status_history.append((status, time.time()))
        return True

    @property
    def progress(self) -> float:
        return sum(t.progress for t in self.tasks) / len(self.tasks) if self.tasks else 0.0

    @property
    def error(self) -> dict[str, str] | None:
        return next((t.error for t in self.tasks if t.error), None)

    def summary(self) -> dict[str, Any]:
        """What lists and live updates of the home page show about a job."""
        return {
            "id": self.id,
            "name": self.name,
            "type": self.type,
            "kind": self.kind,
            "status": self.status,
            "username": self.username,
            "group": self.group,
            "created": self.created,
            "progress": round(self.progress, 4),
            "interrupted": self.interrupted,
        }

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["tasks"] = [t.to_dict() for t in self.tasks]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["tasks"] = [Task.from_dict(t) for t in data.get("tasks", [])]
        values["status_history"] = [tuple(s) for s in data.get("status_history", [])]
        return cls(**values)
