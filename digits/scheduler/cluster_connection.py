"""Why the server cannot join its Ray cluster, in words that say what to fix.

Kept apart from :mod:`digits.scheduler.ray_backend` because none of it needs Ray: :func:`address_problem`
knocks on the address before ``ray.init`` is tried (``ray.init`` on a GCS address where nothing listens retries
for ever, saying nothing), :func:`silence_problem` says what to check while ``ray.init`` gets no answer from
what listens there, and :func:`connection_problem` words what ``ray.init`` raised.
"""

from __future__ import annotations

import re
import socket

CLIENT_PREFIX = "ray://"
CLIENT_PORT = 10001  # Ray Client's port when a ray:// address names none
FORMS = "ray://HOST:PORT (Ray Client), HOST:PORT (the head's GCS port) or auto"
# Ray's check_version_info: "The cluster was started with:\n Ray: X\n Python: Y\nThis process on ... Ray: ..."
_VERSIONS = re.compile(r"Ray: (\S+)\s+Python: (\S+)")


def split_address(address: str) -> tuple[str, int] | None:
    """(host, port) of a ``ray://HOST:PORT`` or ``HOST:PORT`` address; None for ``auto`` (Ray finds the cluster
    started on this machine). ValueError when ``address`` is neither."""
    if address == "auto":
        return None
    client = address.startswith(CLIENT_PREFIX)
    rest = address[len(CLIENT_PREFIX) :] if client else address
    host, colon, port = rest.rpartition(":")
    if not colon and client:
        host, port = rest, str(CLIENT_PORT)
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{address!r} is not a cluster address: use {FORMS}")
    return host.strip("[]"), int(port)


def address_problem(address: str, timeout: float = 5.0) -> str | None:
    """Why nothing answers at ``address`` (a refused or unanswered connection, an unknown host, a malformed
    address), with what to do about it; None when something listens there or the address is ``auto``."""
    try:
        where = split_address(address)
    except ValueError as exc:
        return f"{exc} (DIGITS_CLUSTER or --cluster)"
    if where is None:
        return None
    host, port = where
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else exc.strerror or str(exc)
    started = (f"ray start --head --ray-client-server-port={port}" if address.startswith(CLIENT_PREFIX)
               else f"ray start --head --port={port}")  # fmt: skip
    return (
        f"nothing answers at the cluster address {address} ({reason}): start Ray's head there ({started}), "
        f"or set DIGITS_CLUSTER (--cluster) to the address its `ray start` printed"
    )


def connection_problem(address: str, exc: BaseException) -> str:
    """What ``ray.init(address)`` raising ``exc`` means for the user: a Ray or Python version that differs
    from the cluster's (both named, with the one to install), or Ray's own first line."""
    text = str(exc).strip()
    versions = _VERSIONS.findall(text) if "Version mismatch" in text else []
    if len(versions) == 2:
        (cluster_ray, cluster_python), (our_ray, our_python) = versions
        theirs = f"Ray {cluster_ray} on Python {cluster_python}"
        ours = f"Ray {our_ray} on Python {our_python}"
        return (
            f"version mismatch: the cluster {address} runs {theirs}, this server {ours}; run the server with the "
            f"cluster's versions (pip install ray=={cluster_ray}, Python {cluster_python}), or start the cluster "
            f"with the server's (ray=={our_ray}, Python {our_python})"
        )
    first = text.splitlines()[0] if text else type(exc).__name__
    return f"the cluster {address} cannot be reached: {first}"


def silence_problem(address: str, seconds: float) -> str:
    """What to check when something listens at ``address`` but no Ray answers there within ``seconds``."""
    return (
        f"no Ray answers at the cluster address {address} after {seconds:g} s (something else listens there?): "
        f"set DIGITS_CLUSTER (--cluster) to the address Ray's head printed at `ray start --head` (its GCS "
        f"HOST:PORT, or ray://HOST:PORT for Ray Client's port); still trying"
    )
