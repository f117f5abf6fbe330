"""The embedded job store: every job's directory under ``jobs_dir``, all loaded at start, kept in memory."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from digits.jobs.model import INTERRUPTED_MESSAGE, Job, Status, Task

log = logging.getLogger(__name__)

JOB_FILE = "job.json"
STAGING_PREFIX = ".staging-"


class DeleteRefused(Exception):
    """A job cannot be deleted while other jobs use it."""

    def __init__(self, job: Job, dependents: list[Job]):
        self.dependents = dependents
        names = ", ".join(f"{d.name} ({d.id})" for d in dependents)
        super().__init__(f"{job.name} is used by {names}; delete those first.")


def write_json_atomic(path: Path, data: object) -> None:
    """Write JSON so a reader (or a crash) only ever sees the old file or the new one: temp, fsync, rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class JobStore:
    """Owns the jobs: loading, saving, listing, deleting. Safe to call from several threads."""

    def __init__(self, jobs_dir: Path, save_interval: float = 2.0):
        self.jobs_dir = Path(jobs_dir)
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.save_interval = save_interval
        self._jobs: dict[str, Job] = {}
        self._last_saved: dict[str, float] = {}
        # One lock for every job's state: the scheduler's threads change it, views read it.
        self.lock = threading.RLock()

    # -- loading -------------------------------------------------------------------------------------
    def load_all(self, still_running: Callable[[Task], bool] | None = None) -> list[str]:
        """Load every job directory; a job that was running is marked interrupted, but for the tasks that
        ``still_running`` says run on without this server (on a cluster). Returns problems found."""
        problems = []
        for entry in sorted(self.jobs_dir.iterdir()):
            if entry.name.startswith(STAGING_PREFIX):
                # A job whose creation never finished: nothing in it was ever offered to a user.
                shutil.rmtree(entry, ignore_errors=True)
                continue
            if not (entry / JOB_FILE).is_file():
                continue
            try:
                job = Job.from_dict(json.loads((entry / JOB_FILE).read_text()))
            except (OSError, ValueError, TypeError) as exc:
                problems.append(f"{entry.name}: {exc}")
                log.error("cannot load job %s: %s", entry.name, exc)
                continue
            job.directory = str(entry)
            if self._mark_interrupted(job, still_running):
                self._write(job)
            self._jobs[job.id] = job
        log.info("loaded %d jobs from %s", len(self._jobs), self.jobs_dir)
        return problems

    @staticmethod
    def _mark_interrupted(job: Job, still_running: Callable[[Task], bool] | None = None) -> bool:
        unfinished = [t for t in job.tasks if t.status in (Status.WAITING, Status.RUNNING)
                      and not (still_running and still_running(t))]  # fmt: skip
        for task in unfinished:
            task.status = Status.ABORTED
            task.waiting_for = None
            task.finished = task.finished or time.time()
            task.error = {"message": INTERRUPTED_MESSAGE, "traceback": ""}
        if unfinished:
            job.interrupted = True
            job.record_status()
        return bool(unfinished)

    # -- creating ------------------------------------------------------------------------------------
    def staging_dir(self, job_id: str) -> Path:
        """A directory to prepare a new job in (uploads, lists) before :meth:`add` makes it visible."""
        path = self.jobs_dir / f"{STAGING_PREFIX}{job_id}"
        path.mkdir(parents=True)
        return path

    @contextmanager
    def staging(self, job_id: str) -> Iterator[Path]:
        """A staging directory for a new job, removed again if preparing the job fails."""
        path = self.staging_dir(job_id)
        try:
            yield path
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise

    def add(self, job: Job, staging: Path | None = None) -> Job:
        """Make a new job visible: its ``job.json`` is written, then its directory gets its final name."""
        final = self.jobs_dir / job.id
        job.directory = str(final)
        staging = staging or self.staging_dir(job.id)
        job.record_status()
        write_json_atomic(staging / JOB_FILE, job.to_dict())
        os.rename(staging, final)
        with self.lock:
            self._jobs[job.id] = job
        return job

    # -- reading -------------------------------------------------------------------------------------
    def get(self, job_id: str) -> Job | None:
        with self.lock:
            return self._jobs.get(job_id)

    def all(self, predicate: Callable[[Job], bool] | None = None) -> list[Job]:
        """Jobs, newest first."""
        with self.lock:
            jobs = list(self._jobs.values())
        jobs = [j for j in jobs if predicate is None or predicate(j)]
        return sorted(jobs, key=lambda j: j.created, reverse=True)

    def snapshot(self, job: Job) -> dict:
        """The job as a plain dict, taken while no thread changes it."""
        with self.lock:
            return job.to_dict()

    def dependents(self, job: Job) -> list[Job]:
        return self.all(lambda other: job.id in other.depends_on_jobs)

    # -- writing -------------------------------------------------------------------------------------
    def save(self, job: Job, throttle: bool = False) -> None:
        """Persist a job; with ``throttle``, skip if it was saved less than ``save_interval`` ago."""
        now = time.monotonic()
        with self.lock:
            if throttle and now - self._last_saved.get(job.id, 0.0) < self.save_interval:
                return
            if job.id not in self._jobs:
                return  # deleted meanwhile
            self._last_saved[job.id] = now
            self._write(job)

    def update(self, job: Job, **values: str) -> None:
        """Change a job's own fields (``name``, ``notes``, ``group``) and save it."""
        with self.lock:
            for name, value in values.items():
                setattr(job, name, value)
            self.save(job)

    def _write(self, job: Job) -> None:
        write_json_atomic(Path(job.directory) / JOB_FILE, job.to_dict())

    def delete(self, job: Job) -> None:
        """Remove a job and its directory; refused while other jobs depend on it."""
        with self.lock:
            dependents = self.dependents(job)
            if dependents:
                raise DeleteRefused(job, dependents)
            self._jobs.pop(job.id, None)
            self._last_saved.pop(job.id, None)
        # Rename first so a crash during rmtree leaves a staging leftover, not a half-deleted job.
        doomed = self.jobs_dir / f"{STAGING_PREFIX}deleted-{job.id}"
        os.rename(job.directory, doomed)
        shutil.rmtree(doomed, ignore_errors=True)
