"""Errors in the user's network source, told as the user's file and line (framework-free: both training tools,
their predictors and exports use it).

:class:`NetworkError` carries the line and its source; :func:`building` turns what the user's code raises
into one; :func:`error_fields` makes the protocol ``error`` event of any failure the user can fix.
"""

from __future__ import annotations

import contextlib
import linecache
import os
import traceback
from collections.abc import Iterator


class NetworkError(Exception):
    """A failure in the user's network source; the message names the user's file and line when known."""

    def __init__(self, message: str, line: int | None = None, source_line: str | None = None):
        super().__init__(message)
        self.line = line
        self.source_line = source_line


def user_error(exc: BaseException, path: str) -> NetworkError:
    """A :class:`NetworkError` for ``exc`` naming the deepest line of ``path`` in its traceback (or none)."""
    line = None
    if isinstance(exc, SyntaxError) and exc.filename == path:
        line = exc.lineno
    else:
        for frame in traceback.extract_tb(exc.__traceback__):
            if frame.filename == path:
                line = frame.lineno
    text = exc.msg if isinstance(exc, SyntaxError) else str(exc)
    return network_error(f"{type(exc).__name__}: {text}", path, line)


def network_error(message: str, path: str, line: int | None) -> NetworkError:
    """``message`` followed by where it is: ``(network.py, line 12)``, or ``(network.py)`` without a line."""
    where = f" ({os.path.basename(path)}, line {line})" if line else f" ({os.path.basename(path)})"
    source_line = linecache.getline(path, line).rstrip() if line else None
    return NetworkError(f"{message}{where}", line, source_line)


@contextlib.contextmanager
def building(network_path: str) -> Iterator[None]:
    """Around code that builds or runs the user's network: what the user's source raises becomes a
    :class:`NetworkError` naming their line (errors that never passed through it stay as they are)."""
    try:
        yield
    except NetworkError:
        raise
    except Exception as exc:
        if not any(f.filename == network_path for f in traceback.extract_tb(exc.__traceback__)):
            raise
        raise user_error(exc, network_path) from exc


def error_fields(exc: Exception) -> dict:
    """The fields of a protocol ``error`` event for a failure the user can fix: message, the traceback of
    its cause and, for the network's own errors, the user's line and its source."""
    cause = exc.__cause__ or exc
    where = {"user_line": exc.line, "user_source_line": exc.source_line} if getattr(exc, "line", None) else {}
    return {"message": str(exc), "traceback": "".join(traceback.format_exception(cause)), **where}
