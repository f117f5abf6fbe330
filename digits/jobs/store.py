"""The embedded job store: every job's directory under ``jobs_dir``, all loaded at start, kept in memory."""

from __future__ import annotations

import errno
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
RETRY_INTERVAL = 5.0  # seconds between tries to save a job whose last save failed

NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def write_error_message(exc: OSError, path: str | Path) -> str:
    """What a user reads when writing under ``path`` failed: "no space left in <dir>" for a full disk."""
    path = Path(path)
    directory = path if path.is_dir() else path.parent
    if exc.errno in NO_SPACE or isinstance(exc, JobSaveError) and exc.no_space:
        return f"no space left in {directory}"
    return f"cannot write in {directory}: {exc.strerror or exc}"


class JobSaveError(OSError):
    """A job could not be saved: the disk is full or refuses writes. The last good ``job.json`` is kept."""

    def __init__(self, exc: OSError, path: str | Path):
        self.no_space = exc.errno in NO_SPACE
        super().__init__(exc.errno, write_error_message(exc, path))

    def __str__(self) -> str:
        return self.strerror


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
        try:
            Path(tmp).unlink(missing_ok=True)
        except OSError:
            pass
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class JobStore:
    """Owns the jobs: loading, saving, listing, deleting. Safe to call from several threads.

    Saving takes a copy of the job under :attr:`lock` and writes it with the lock released: a slow or full
    disk never stalls the threads that read jobs. ``save(job, wait=False)`` (what the scheduler does, lock
    held) leaves the writing to the store's writer thread; a write that fails is tried again every
    :data:`RETRY_INTERVAL` seconds and reported once to :attr:`on_save_error` (``job, JobSaveError``).
    """

    def __init__(self, jobs_dir: Path, save_interval: float = 2.0):
        self.jobs_dir = Path(jobs_dir)
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.save_interval = save_interval
        self._jobs: dict[str, Job] = {}
        self._last_saved: dict[str, float] = {}
        # One lock for every job's state: the scheduler's threads change it, views read it.
        self.lock = threading.RLock()
        self.on_save_error: Callable[[Job, JobSaveError], None] | None = None
        # The writer thread's queue: job id -> when to write it (monotonic). Its own lock, taken after
        # self.lock or alone, never the other way round.
        self._pending: dict[str, float] = {}
        self._pending_cv = threading.Condition(threading.Lock())
        self._writing = 0
        self._failing: set[str] = set()
        self._versions: dict[str, int] = {}  # job id -> copies taken
        self._written: dict[str, int] = {}  # job id -> the newest copy on disk
        self._file_locks: dict[str, threading.Lock] = {}
        self._writer: threading.Thread | None = None

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
            self._jobs[job.id] = job
            if self._mark_interrupted(job, still_running):
                try:
                    self._write_now(job)
                except JobSaveError as exc:
                    # Loaded all the same (a full disk must not keep the server from starting); saved later.
                    problems.append(f"{entry.name}: {exc}")
                    log.error("cannot save job %s: %s", entry.name, exc)
                    self._queue(job.id, time.monotonic() + RETRY_INTERVAL)
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
        try:
            staging = staging or self.staging_dir(job.id)
            job.record_status()
            write_json_atomic(staging / JOB_FILE, job.to_dict())
            os.rename(staging, final)
        except OSError as exc:
            raise JobSaveError(exc, staging or self.jobs_dir) from exc
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
    def save(self, job: Job, throttle: bool = False, wait: bool = True) -> None:
        """Persist a job; with ``throttle``, at most once every ``save_interval`` seconds.

        With ``wait`` (and no ``throttle``) the job is written before this returns, JobSaveError if it
        cannot be; otherwise the writer thread writes it soon, and a failure goes to :attr:`on_save_error`.
        """
        with self.lock:
            if job.id not in self._jobs:
                return  # deleted meanwhile
            due = time.monotonic()
            if throttle:
                due = max(due, self._last_saved.get(job.id, 0.0) + self.save_interval)
        if wait and not throttle:
            self._write_now(job)
        else:
            self._queue(job.id, due)

    def update(self, job: Job, **values: str) -> None:
        """Change a job's own fields (``name``, ``notes``, ``group``) and save it; nothing changes if the save
        fails (JobSaveError)."""
        with self.lock:
            before = {name: getattr(job, name) for name in values}
            for name, value in values.items():
                setattr(job, name, value)
        try:
            self.save(job)
        except JobSaveError:
            with self.lock:
                for name, value in before.items():
                    if getattr(job, name) == values[name]:
                        setattr(job, name, value)
            raise

    def flush(self, timeout: float = 10.0) -> bool:
        """Write every job waiting to be written now (those whose last save failed are tried once more) and wait
        for it; False if ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        with self._pending_cv:
            start = time.monotonic()
            for job_id in self._pending:
                self._pending[job_id] = min(self._pending[job_id], start)
            self._pending_cv.notify_all()
            # A job tried and failing again is queued for later than ``start``.
            while any(at <= start for at in self._pending.values()) or self._writing:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._pending_cv.wait(min(left, 0.05))
        return True

    def _queue(self, job_id: str, due: float) -> None:
        with self._pending_cv:
            if job_id in self._pending and self._pending[job_id] <= due:
                return
            self._pending[job_id] = due
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(target=self._write_loop, name="job-writer", daemon=True)
                self._writer.start()
            self._pending_cv.notify_all()

    def _write_loop(self) -> None:
        while True:
            with self._pending_cv:
                now = time.monotonic()
                due = [job_id for job_id, at in self._pending.items() if at <= now]
                if not due:
                    wait = min(self._pending.values(), default=now + 1.0) - now
                    self._pending_cv.wait(max(0.01, min(wait, 1.0)))
                    continue
                for job_id in due:
                    del self._pending[job_id]
                self._writing += 1
            try:
                for job_id in due:
                    self._write_queued(job_id)
            finally:
                with self._pending_cv:
                    self._writing -= 1
                    self._pending_cv.notify_all()

    def _write_queued(self, job_id: str) -> None:
        job = self.get(job_id)
        if job is None:
            self._failing.discard(job_id)
            return
        try:
            self._write_now(job)
        except JobSaveError as exc:
            first = job_id not in self._failing
            self._failing.add(job_id)
            if self.get(job_id) is None:
                self._failing.discard(job_id)
                return  # deleted while being written
            log.error("cannot save job %s: %s", job_id, exc)
            self._queue(job_id, time.monotonic() + RETRY_INTERVAL)
            if first and self.on_save_error is not None:
                try:
                    self.on_save_error(job, exc)
                except Exception:  # the writer must go on for every other job
                    log.exception("on_save_error listener failed")
        except Exception:
            log.exception("cannot save job %s", job_id)
        else:
            if job_id in self._failing:
                self._failing.discard(job_id)
                log.info("job %s saved again", job_id)

    def _write_now(self, job: Job) -> None:
        """Copy the job under the lock, write the copy with the lock released (unless the caller holds it).

        Copies are numbered, so an older copy never replaces a newer one that another thread wrote first.
        """
        with self.lock:
            data = job.to_dict()
            version = self._versions[job.id] = self._versions.get(job.id, 0) + 1
            self._last_saved[job.id] = time.monotonic()
            file_lock = self._file_locks.setdefault(job.id, threading.Lock())
        path = Path(job.directory) / JOB_FILE
        with file_lock:
            if self._written.get(job.id, 0) > version:
                return
            try:
                write_json_atomic(path, data)
            except OSError as exc:
                raise JobSaveError(exc, path) from exc
            self._written[job.id] = version
        self._failing.discard(job.id)

    def is_failing(self, job: Job) -> bool:
        """Whether the job's last save failed (what is on disk is older than what the pages show)."""
        return job.id in self._failing

    def delete(self, job: Job) -> None:
        """Remove a job and its directory; refused while other jobs depend on it."""
        with self.lock:
            dependents = self.dependents(job)
            if dependents:
                raise DeleteRefused(job, dependents)
            self._jobs.pop(job.id, None)
            self._last_saved.pop(job.id, None)
            file_lock = self._file_locks.pop(job.id, threading.Lock())
            self._versions.pop(job.id, None)
            self._written.pop(job.id, None)
        self._failing.discard(job.id)
        # Rename first so a crash during rmtree leaves a staging leftover, not a half-deleted job.
        doomed = self.jobs_dir / f"{STAGING_PREFIX}deleted-{job.id}"
        with file_lock:  # not while its job.json is being written
            os.rename(job.directory, doomed)
        shutil.rmtree(doomed, ignore_errors=True)
