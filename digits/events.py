"""Live updates: job and task changes published to Socket.IO rooms (one per job, one for the home page).

Payloads are data; the pages render them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import request
from flask_socketio import SocketIO, join_room, leave_room

from digits.auth import current_username
from digits.jobs import Job, Task

HOME_ROOM = "home"


def task_payload(task: Task) -> dict[str, Any]:
    """The part of a task the pages show live (its full data is in the job's JSON)."""
    return {
        "id": task.id,
        "name": task.name,
        "status": task.status,
        "progress": round(task.progress, 4),
        "eta": task.eta,
        "started": task.started,
        "finished": task.finished,
        "waiting_for": task.waiting_for,
        "error": task.error,
    }


class Publisher:
    """Sends ``job_update`` and ``task_update`` events; rooms are joined with a ``join`` event.

    ``job_exists(job_id)`` says whether a job room may be joined.
    """

    def __init__(self, socketio: SocketIO, job_exists: Callable[[str], bool]):
        self.socketio = socketio
        self.job_exists = job_exists
        socketio.on_event("join", self._join)
        socketio.on_event("leave", self._leave)

    def _join(self, message: dict[str, Any]) -> dict[str, Any]:
        """Join ``message["room"]`` (``home`` or a job id) for a logged-in user.

        Returns the acknowledgement the client may wait for: ``{"joined": room}`` or ``{"error": why}``.
        """
        room = message.get("room") if isinstance(message, dict) else None
        # Flask-Login reads the user from the session Flask-SocketIO keeps for this connection.
        if current_username() is None:
            return {"error": "Log in to receive live updates."}
        if not isinstance(room, str) or not (room == HOME_ROOM or self.job_exists(room)):
            return {"error": f"No room {room!r}: join 'home' or a job id."}
        join_room(room, sid=request.sid)
        return {"joined": room}

    @staticmethod
    def _leave(message: dict[str, Any]) -> None:
        room = (message or {}).get("room")
        if isinstance(room, str) and room:
            leave_room(room, sid=request.sid)

    def job_changed(self, job: Job, task: Task | None) -> None:
        summary = job.summary()
        self.socketio.emit("job_update", summary, to=HOME_ROOM)
        self.socketio.emit("job_update", summary, to=job.id)
        if task is not None:
            self.socketio.emit("task_update", {"job_id": job.id, "task": task_payload(task)}, to=job.id)

    def job_deleted(self, job: Job) -> None:
        payload = {"id": job.id, "type": job.type, "deleted": True}
        self.socketio.emit("job_update", payload, to=HOME_ROOM)
        self.socketio.emit("job_update", payload, to=job.id)
