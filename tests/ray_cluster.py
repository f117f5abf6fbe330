"""Ray's test cluster on this machine for the Ray backend's tests, and how they talk to a live server on it.

:func:`started_cluster` starts a head that runs nothing and the nodes asked for, and after the module stops
them and checks that no Ray process it started is left (other Ray processes on the machine are not its own).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import psutil
from helpers import poll

NODE_ARGS = dict(object_store_memory=80 * 1024 * 1024, include_dashboard=False)
# A node that dies is seen dead after Ray's health checks fail: within ~10 s here rather than Ray's ~30 s.
HEALTH_CHECKS = {"health_check_period_ms": 1000, "health_check_timeout_ms": 3000, "health_check_failure_threshold": 5}
RAY_PROCESS_NAMES = ("raylet", "gcs_server", "ray::", "dashboard", "runtime_env", "log_monitor", "monitor.py",
                     "ray.util.client.server", "default_worker.py")  # fmt: skip


def _command_line(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return ""


def ray_processes_of(session_name: str) -> set[psutil.Process]:
    """The Ray processes of the cluster whose session is ``session_name`` (its head's and its nodes' daemons,
    which name the session, and their workers, which name their raylet) and those this process started.
    Other Ray clusters on the machine are not included."""
    ray_processes = []
    for process in psutil.process_iter():
        line = _command_line(process)
        if any(name in line for name in RAY_PROCESS_NAMES) and "pytest" not in line:
            ray_processes.append((process, line))
    daemons = {process for process, line in ray_processes if session_name in line}
    raylets = {str(process.pid) for process in daemons if "raylet" in _command_line(process)}
    descendants = set(psutil.Process().children(recursive=True))
    ours = set(daemons)
    for process, _line in ray_processes:
        try:
            if process in descendants or process.environ().get("RAY_RAYLET_PID") in raylets:
                ours.add(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return ours


def still_running(processes: set[psutil.Process]) -> set[int]:
    alive = set()
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                alive.add(process.pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def wait_ended(processes: set[psutil.Process], what: str, timeout: float = 30.0) -> None:
    """Fail unless every process of ``processes`` ends within ``timeout`` seconds."""
    left = poll(lambda: still_running(processes), lambda pids: not pids, timeout=timeout, interval=0.2, what=what)
    assert not left


@contextmanager
def started_cluster(name: str, head: dict | None = None, **nodes: dict) -> Iterator:
    """Ray's ``Cluster``: a head with no CPU (``head`` adds or overrides its arguments) and one node per keyword
    (``cpu_node={"num_cpus": 1}``), each an attribute of the cluster by that name. Stops them all after, then
    fails if a Ray process it started is left; prints how long the cluster was up, as ``name``."""
    from ray import cluster_utils

    started = time.monotonic()
    cluster = cluster_utils.Cluster(initialize_head=True,
                                    head_node_args={"num_cpus": 0, "_system_config": HEALTH_CHECKS, **NODE_ARGS,
                                                    **(head or {})})  # fmt: skip
    try:
        for attribute, args in nodes.items():
            setattr(cluster, attribute, cluster.add_node(**{**NODE_ARGS, **args}))
        cluster.wait_for_nodes()
        yield cluster
    finally:
        ours = ray_processes_of(cluster.head_node.session_name)
        cluster.shutdown()
        wait_ended(ours, "the cluster's Ray processes to end")
        print(f"\n{name}: {time.monotonic() - started:.0f} s with the cluster")


def post(server, path: str, fields: dict) -> dict:
    """POST ``fields`` to ``path`` on ``server`` (a LiveServer with a logged-in ``http`` session); its JSON."""
    answer = server.http.post(server.url + path, data=fields)
    assert answer.ok, answer.text
    return answer.json()


def get_json(server, path: str) -> dict:
    return server.http.get(server.url + path).json()


def wait_json(server, path: str, until, timeout: float = 120.0) -> dict:
    """Read ``path``'s JSON until ``until`` holds for it (fails after ``timeout`` s); returns it."""
    return poll(lambda: get_json(server, path), until, timeout=timeout, interval=0.1, what=path)
