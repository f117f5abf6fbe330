"""Work the server does only a few at a time: a caller takes a slot, or hears "busy, retry" instead of waiting.

A request thread that waits for a slot is a thread no other client gets; past a short wait the answer is
:class:`Busy`, which the web layer turns into 503 with ``Retry-After``. Nothing here imports Flask.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Busy(RuntimeError):
    """The server runs as much of this as it may; ``retry_after`` (seconds) is a fair wait before trying again."""

    def __init__(self, message: str, retry_after: int = 10):
        super().__init__(message)
        self.retry_after = retry_after


class Slots:
    """At most ``size`` holders at once of the work called ``what`` (plural: "exports"), named by ``setting``."""

    def __init__(self, size: int, what: str, setting: str, retry_after: int = 10):
        self.size = size
        self.what = what
        self.setting = setting
        self.retry_after = retry_after
        self._semaphore = threading.BoundedSemaphore(size)

    @contextmanager
    def take(self) -> Iterator[None]:
        """Hold a slot for the ``with`` block; raises :class:`Busy` at once when all are taken."""
        if not self._semaphore.acquire(blocking=False):
            raise Busy(
                f"{self.size} {self.what} are running already, the most this server runs at once "
                f"({self.setting}); try again in {self.retry_after} s",
                self.retry_after,
            )
        try:
            yield
        finally:
            self._semaphore.release()
