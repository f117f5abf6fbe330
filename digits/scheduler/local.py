"""The local scheduler: runs each task as a child process on this machine when its resources are free.

A thread places waiting tasks; each running task's tool (started by :func:`digits.processes.start_tool`)
hands its JSON lines to the task's :class:`TaskRun`, which turns them into task state.
``on_change(job, task)`` is called after every change so the app can save and publish it.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from digits.hardware import gpu_usage, process_usage
from digits.jobs import Job, JobSaveError, JobStore, Status, Task, lists
from digits.jobs.model import INTERRUPTED_MESSAGE
from digits.jobs.store import NO_SPACE, write_error_message
from digits.processes import RunningTool, start_tool
from digits.scheduler.resources import ResourcePools

log = logging.getLogger(__name__)

OnChange = Callable[[Job, Task | None], None]


class LocalScheduler:
    """Runs jobs' tasks in dependency order, one child process per task."""

    def __init__(
        self,
        store: JobStore,
        pools: ResourcePools,
        on_change: OnChange = lambda job, task: None,
        python: str = sys.executable,
        kill_grace: float = 5.0,
    ):
        self.store = store
        self.pools = pools
        self.on_change = on_change
        self.python = python
        self.kill_grace = kill_grace
        self._queue: list[str] = []  # ids of jobs with unfinished tasks, in submission order
        self._runs: dict[tuple[str, str], TaskRun] = {}
        self._wake = threading.Condition(store.lock)
        self._stopping = False
        self._thread: threading.Thread | None = None
        store.on_save_error = self._save_failed

    # -- public --------------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> None:
        """Queue every task of ``job`` that has not run yet."""
        with self._wake:
            for task in job.tasks:
                if task.status == Status.INITIALIZED:
                    task.status = Status.WAITING
            self._queue.append(job.id)
            self._changed(job, None, significant=True)
            self._wake.notify()

    def resume(self, job: Job, extra_args: list[str]) -> None:
        """Run a finished job's unfinished tasks again, each with ``extra_args`` added once (e.g. ``--resume``)."""
        with self._wake:
            for task in job.tasks:
                if task.status in (Status.ABORTED, Status.ERROR):
                    task.args.extend(arg for arg in extra_args if arg not in task.args)
                    task.status = Status.INITIALIZED
                    task.error = None
            job.interrupted = False
        self.submit(job)

    def abort(self, job: Job, wait: bool = False) -> None:
        """Abort waiting tasks at once and running ones with SIGTERM (SIGKILL if they linger).

        With ``wait``, return only once the job's processes have ended (before deleting its directory).
        """
        with self._wake:
            runs = [run for key, run in self._runs.items() if key[0] == job.id]
            for task in job.tasks:
                if task.status in (Status.INITIALIZED, Status.WAITING):
                    self._finish_unrun(job, task, Status.ABORTED, None)
            for run in runs:
                run.terminate(self.kill_grace)
        if wait:
            for run in runs:
                run.join()

    def pid(self, job: Job, task: Task) -> int | None:
        """The process id of a running task, for its hardware panel."""
        with self._wake:
            run = self._runs.get((job.id, task.id))
            return run.tool.pid if run and run.tool else None

    def usage(self, job: Job, task: Task) -> dict | None:
        """The hardware panel's reading of a running task: its GPUs, its process's CPU and memory; None when
        it is not running."""
        pid = self.pid(job, task)
        if pid is None:
            return None
        return {"gpus": gpu_usage(task.assigned.get("gpus", [])), "process": process_usage(pid)}

    def shutdown(self) -> None:
        """Stop every child; their tasks are marked interrupted, as after a crash."""
        with self._wake:
            self._stopping = True
            runs = list(self._runs.values())
            self._wake.notify()
        for run in runs:
            run.interrupted = True
            run.terminate(self.kill_grace)
        for run in runs:
            run.join()
        if self._thread:
            self._thread.join(timeout=5)
        self.store.flush(timeout=5)

    # -- placing tasks -------------------------------------------------------------------------------
    def _loop(self) -> None:
        with self._wake:
            while not self._stopping:
                try:
                    self._place_tasks()
                except Exception:  # one job's trouble must not stop every other job from starting
                    log.exception("placing tasks failed")
                self._wake.wait(timeout=1.0)

    def _place_tasks(self) -> None:
        for job_id in list(self._queue):
            job = self.store.get(job_id)
            if job is None or all(t.status in Status.FINISHED for t in job.tasks):
                self._queue.remove(job_id)
                continue
            for task in job.tasks:
                if task.status == Status.WAITING:
                    self._try_start(job, task)

    def _try_start(self, job: Job, task: Task) -> None:
        blocker = self._blocker(job, task)
        if blocker is None:
            impossible = self.pools.missing(task.resources)
            if impossible:
                self._finish_unrun(job, task, Status.ERROR, impossible)
                return
            assignment, blocker = self.pools.try_reserve(task.resources)
            if assignment is not None:
                self._launch(job, task, assignment)
                return
        if blocker and blocker.startswith("!"):
            self._finish_unrun(job, task, Status.ERROR, blocker[1:])
        elif task.waiting_for != blocker:
            task.waiting_for = blocker
            self._changed(job, task, significant=True)

    def _blocker(self, job: Job, task: Task) -> str | None:
        """What ``task`` waits for; None when it may start; a leading "!" when it never will."""
        for dep_id in job.depends_on_jobs:
            dep = self.store.get(dep_id)
            if dep is None:
                return f"!{dep_id} was deleted"
            if dep.status in (Status.ERROR, Status.ABORTED):
                return f"!{dep.type} {dep.name} ended as {dep.status}"
            if dep.status != Status.DONE:
                return f"waiting for {dep.type} {dep.name}"
        for dep_id in task.depends_on:
            dep = job.task(dep_id)
            if dep.status in (Status.ERROR, Status.ABORTED):
                return f"!{dep.name} ended as {dep.status}"
            if dep.status != Status.DONE:
                return f"waiting for {dep.name}"
        return None

    def _finish_unrun(self, job: Job, task: Task, status: str, message: str | None) -> None:
        task.status = status
        task.waiting_for = None
        task.finished = time.time()
        if message:
            task.error = {"message": message, "traceback": ""}
        self._changed(job, task, significant=True)

    def _launch(self, job: Job, task: Task, assignment: dict) -> None:
        task.status = Status.RUNNING
        task.waiting_for = None
        task.assigned = assignment
        task.started = time.time()
        task.progress = 0.0
        task.eta = None
        task.error = None
        run = self._new_run(job, task)
        self._runs[(job.id, task.id)] = run
        try:
            run.start()
        except OSError as exc:
            del self._runs[(job.id, task.id)]
            self.pools.release(assignment)
            why = write_error_message(exc, job.directory) if exc.errno in NO_SPACE else exc
            self._finish_unrun(job, task, Status.ERROR, f"could not start {task.tool}: {why}")
            return
        self._changed(job, task, significant=True)

    def _new_run(self, job: Job, task: Task) -> TaskRun:
        # The one place a backend differs in how a task's tool is started (see digits.scheduler.ray_backend).
        return TaskRun(self, job, task)

    # -- state changes -------------------------------------------------------------------------------
    def _changed(self, job: Job, task: Task | None, significant: bool) -> None:
        job.record_status()
        # The store's writer thread writes it, with the lock released; a failure comes to _save_failed.
        self.store.save(job, throttle=not significant, wait=False)
        try:
            self.on_change(job, task)
        except Exception:  # a failing listener must not stop the scheduler
            log.exception("on_change listener failed")

    def _save_failed(self, job: Job, exc: JobSaveError) -> None:
        """The store could not save ``job`` (a full disk): it ends as an Error now, rather than run on unsaved."""
        self.stop_job(job, str(exc))

    def _write_failed(self, job: Job, exc: OSError, path: Path) -> None:
        log.error("job %s: cannot write %s: %s", job.id, path, exc)
        self.stop_job(job, write_error_message(exc, path))

    def stop_job(self, job: Job, message: str) -> None:
        """End ``job`` as an Error saying ``message``: waiting tasks at once, running ones stopped (their
        resources are freed when their processes have ended). Nothing happens to a finished job."""
        with self._wake:
            if self.store.get(job.id) is not job:
                return
            runs = [run for key, run in self._runs.items() if key[0] == job.id]
            if not runs and all(t.status in Status.FINISHED for t in job.tasks):
                return
            log.error("job %s stopped: %s", job.id, message)
            for task in job.tasks:
                if task.status in (Status.INITIALIZED, Status.WAITING):
                    self._finish_unrun(job, task, Status.ERROR, message)
            for run in runs:
                run.fail(message, self.kill_grace)
            self._changed(job, None, significant=True)
            self._wake.notify()

    def _task_ended(self, run: TaskRun, returncode: int) -> None:
        job, task = run.job, run.task
        run.lists.close()
        with self._wake:
            self._runs.pop((job.id, task.id), None)
            self.pools.release(task.assigned)
            task.finished = time.time()
            task.eta = None
            if run.interrupted:
                task.status = Status.ABORTED
                task.error = {"message": INTERRUPTED_MESSAGE, "traceback": ""}
                job.interrupted = True
            elif run.failure:
                task.status = Status.ERROR
                task.error = {"message": run.failure, "traceback": run.log_tail()}
            elif run.aborted:
                task.status = Status.ABORTED
            elif returncode == 0 and not task.error:
                task.status = Status.DONE
                task.progress = 1.0
            else:
                task.status = Status.ERROR
                if not task.error:
                    task.error = {"message": exit_message(returncode), "traceback": run.log_tail()}
            self._changed(job, task, significant=True)
            self._wake.notify()


def exit_message(returncode: int) -> str:
    if returncode < 0:
        name = signal.Signals(-returncode).name
        return f"the task was killed by {name}" + (" (out of memory?)" if name == "SIGKILL" else "")
    return f"the task exited with status {returncode}"


class TaskRun:
    """One task's tool while it runs: its events become the task's state, its end the task's status."""

    def __init__(self, scheduler: LocalScheduler, job: Job, task: Task):
        self.scheduler = scheduler
        self.job = job
        self.task = task
        self.log_path = Path(job.directory) / task.log_name
        self.aborted = False
        self.interrupted = False
        self.failure: str | None = None  # why the scheduler stopped it (its job could not be saved)
        self.tool: RunningTool | None = None
        self.lists = lists.ListWriter(job.directory, task.id)

    def start(self) -> None:
        """Start the task's tool; OSError when it cannot be started."""
        command = self.task.command(self.scheduler.python)
        with open(self.log_path, "a") as log_file:
            log_file.write(f"$ cd {shlex.quote(self.job.directory)} && {shlex.join(command)}\n")
        gpus = ",".join(map(str, self.task.assigned.get("gpus", [])))
        self.tool = start_tool(
            command,
            log=self.log_path,
            cwd=self.job.directory,
            env={"PYTHONUNBUFFERED": "1", "CUDA_VISIBLE_DEVICES": gpus},
            on_event=self._on_event,
            on_line=self._on_line,
            on_exit=lambda returncode: self.scheduler._task_ended(self, returncode),
        )

    def _on_event(self, event: dict) -> None:
        kind = event.pop("event", None)
        if kind is None:
            self._on_line(json.dumps(event) + "\n")
            return
        name = LISTED_EVENTS.get(kind)
        if name in lists.LIST_FILES:
            # Appended to the task's list file here, by the one thread that reads this tool, lock released.
            if kind == "metrics":
                event.setdefault("time", round(time.time(), 3))  # when it was measured: Compare's time axis
            if self.failure:
                return
            try:
                self.lists.append(name, event, old=self.task.data.get(name))
            except OSError as exc:
                self.scheduler._write_failed(self.job, exc, lists.list_path(self.job.directory, self.task.id, name))
                return
        with self.scheduler._wake:
            significant = apply_event(self.task, kind, event)
            self.scheduler._changed(self.job, self.task, significant)

    def _on_line(self, line: str) -> None:
        # Not protocol: a library printed to stdout. Keep it for humans, read nothing into it.
        try:
            with open(self.log_path, "a") as log_file:
                log_file.write(line)
        except OSError:
            pass  # a full disk: the line is lost, the tool's events still count

    def terminate(self, grace: float) -> None:
        self.aborted = True
        if self.tool is not None:
            self.tool.terminate(grace)

    def fail(self, message: str, grace: float) -> None:
        """Stop the tool; the task ends as an Error saying ``message``."""
        if self.failure:
            return
        self.failure = message
        self.task.error = {"message": message, "traceback": ""}
        if self.tool is not None:
            self.tool.terminate(grace)

    def join(self) -> None:
        if self.tool is not None:
            self.tool.wait(timeout=self.scheduler.kill_grace + 5)

    def log_tail(self, lines: int = 20) -> str:
        return log_tail(self.log_path, lines)


def log_tail(path: Path, lines: int = 20, max_bytes: int = 64 * 1024) -> str:
    """The last ``lines`` lines of a task's log ("" before it has one), read from the file's end.

    Pages ask for it with every model JSON: only the last ``max_bytes`` are read, however long the log.
    """
    try:
        with open(path, "rb") as log_file:
            size = log_file.seek(0, os.SEEK_END)
            log_file.seek(max(0, size - max_bytes))
            kept = log_file.read().decode(errors="replace").splitlines(keepends=True)
    except OSError:
        return ""
    if size > max_bytes:
        kept = kept[1:]  # the first line read may be cut
    return "".join(kept[-lines:])


# Events kept as lists under these names: in files beside job.json (see digits.jobs.lists.LIST_FILES; the
# task's data counts them) or, for the few snapshots, in the task's data itself.
LISTED_EVENTS = {"skipped": "skipped_images", "metrics": "metrics", "snapshot": "snapshots"}


def apply_event(task: Task, kind: str, event: dict) -> bool:
    """Fold one protocol event into ``task``; True when the change must be saved at once."""
    if kind == "progress":
        total = event.get("total") or 0
        done = event.get("done", 0)
        task.progress = min(1.0, done / total) if total else 0.0
        elapsed = time.time() - (task.started or time.time())
        task.eta = elapsed * (total - done) / done if done and total else None
        task.data["progress"] = event
        return False
    if kind in LISTED_EVENTS:
        name = LISTED_EVENTS[kind]
        if name in lists.LIST_FILES:
            # The entry is in the list's file already (TaskRun appended it): job.json keeps the count.
            counted = lists.count(task.data, name)
            old = task.data.pop(name, None)  # an old job's list: the file has it now
            task.data.setdefault(lists.COUNTS_KEY, {})[name] = counted + 1
            if kind == "metrics":
                best = task.data.setdefault(lists.BEST_VAL_KEY, {})
                for entry in [*(old or []), event]:
                    lists.note_best(best, entry)
            return False
        task.data.setdefault(name, []).append(event)
        return kind == "snapshot"
    if kind == "result":
        task.data.update(event)
        return True
    if kind == "error":
        # Tools may say more (the user's file and line); keep all of it.
        task.error = {"message": "", "traceback": "", **event}
        return True
    if kind == "status":
        # What a tool does before it can count progress ("Building the network"): shown until progress moves.
        task.data["status_message"] = str(event.get("message") or "")[:200]
        return False
    log.warning("task %s sent an unknown event %r", task.id, kind)
    return False
