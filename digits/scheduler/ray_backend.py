"""The Ray backend: the scheduler places tasks on the nodes of a Ray cluster instead of local children.

``RayScheduler`` is the :class:`~digits.scheduler.local.LocalScheduler` with two parts swapped: its pools
are the cluster's nodes (:class:`ClusterPools`: a task asks for its GPUs as ``num_gpus``, a CPU slot as
``num_cpus=1``, on the node with the most room), and its tools run in a :class:`ToolRunner` actor pinned to
that node, which starts the very same command there with :func:`digits.processes.start_tool`. Each node keeps
idle runners ready for the next task (:class:`IdleRunners`), so that a tool starts as soon as its task is placed;
a runner whose task has ended is idle again.

How a tool's JSON lines come back. The actor writes each event the tool prints, one line each, to
``<task id>.events.jsonl`` in the job directory (on storage every node mounts), and its exit status to
``<task id>.exit.json`` once every event is written; :class:`ClusterTool` on the server tails that file.
A file rather than an actor method the server polls or a Ray queue, because it is the one channel that
survives the web server: a SIGKILLed server loses nothing the tool said while it was down, and a
restarted one reads on from the byte offset its ``job.json`` recorded with the state it had applied
(``task.assigned["events_read"]``). The actors are detached and named (namespace ``digits``), so they
outlive the server and a restart finds them with :func:`ray.get_actor`; a task that ended meanwhile has
its exit file, and the runners the old server left idle are ended. An actor that dies with no exit file
(its node left the cluster) marks the task interrupted: Resume places it on another node from its last
snapshot.

The web process imports Ray only here, and only when a cluster is configured.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import shlex
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from digits.hardware import Gpu, gpu_usage, process_usage
from digits.jobs import Job, JobStore, Status, Task, lists
from digits.jobs.store import write_json_atomic
from digits.processes import start_tool
from digits.scheduler.cluster_connection import address_problem, connection_problem, silence_problem
from digits.scheduler.local import LocalScheduler, OnChange, TaskRun
from digits.scheduler.resources import gpus_asked

log = logging.getLogger(__name__)

NAMESPACE = "digits"
MARKER_FILE = ".cluster-check"
NODE_REFRESH = 2.0  # seconds between readings of the cluster's nodes
RECONNECT_INTERVAL = 15.0
CONNECT_PATIENCE = 15.0  # seconds ray.init may take before the server says the address may not be Ray's
POLL_INTERVAL = 0.05  # how often a running task's events file is read: the latency of live updates
# Ray lowers its worker processes to niceness 15, and the tool would inherit it: where the kernel weighs it
# against other work at 0 (no autogroup, or a container's CPU cgroup, which overrides autogroup) the training
# then gets a few per cent of a busy CPU. Ray's own job supervisor runs user code at 0 the same way
# (RAY_worker_niceness, read by each worker as it starts).
RUNNER_ENV = {"env_vars": {"RAY_worker_niceness": "0"}}
IDLE_SHAPES = ((0, 1.0), (1, 0.0))  # (GPUs, CPU slots) of the idle runners: what most tasks ask for
NODE_LOST_MESSAGE = "Interrupted: node {node} left the cluster while this ran. Resume continues from the last snapshot."


def events_path(job: Job, task: Task) -> Path:
    return Path(job.directory) / f"{task.id}.events.jsonl"


def exit_path(job: Job, task: Task) -> Path:
    return Path(job.directory) / f"{task.id}.exit.json"


def is_cluster_task(task: Task) -> bool:
    """Whether ``task`` was running on a cluster node (so a restarted server must look for it, not give up)."""
    return task.status == Status.RUNNING and bool(task.assigned.get("actor"))


# -- on the node ---------------------------------------------------------------------------------------
class ToolRunner:
    """Runs tasks' tools, one at a time, on the node Ray placed it on (a detached actor, made by
    :func:`_runner_class`): a runner whose task has ended waits for the next task of its shape on its node."""

    def __init__(self) -> None:
        self._tool = None
        self._run: str | None = None  # the token of the task run whose tool it started last

    def start(self, run: str, args: list[str], cwd: str, log_name: str, events: str, exit_file: str) -> dict:
        """Start ``python -m ...`` (``args`` without the interpreter: this node's Python runs it) in ``cwd`` for the
        task run ``run``; returns where it runs: ``{"pid", "node", "host", "gpus"}``. OSError when it cannot be
        started."""
        command = [sys.executable, *args]
        log_path = Path(cwd) / log_name
        host = socket.gethostname()
        with open(log_path, "a") as log_file:
            log_file.write(f"$ cd {shlex.quote(cwd)} && {shlex.join(command)}   # on {host}\n")
        gpus = [str(g) for g in ray.get_gpu_ids()]
        events_file = open(events, "w", encoding="utf-8")  # noqa: SIM115 - open while the tool runs

        def on_event(event: dict) -> None:
            events_file.write(json.dumps(event, separators=(",", ":")) + "\n")
            events_file.flush()

        def on_line(line: str) -> None:
            with open(log_path, "a") as log_file:
                log_file.write(line)

        def on_exit(returncode: int) -> None:
            events_file.close()  # every event is in the file before the exit status says it is whole
            write_json_atomic(Path(exit_file), {"returncode": returncode})

        env = {"PYTHONUNBUFFERED": "1", "CUDA_VISIBLE_DEVICES": ",".join(gpus)}
        self._tool = start_tool(command, log=log_path, cwd=cwd, env=env, on_event=on_event, on_line=on_line,
                                on_exit=on_exit)  # fmt: skip
        self._run = run
        self._gpus = [int(g) for g in gpus if g.isdigit()]
        return {"pid": self._tool.pid, "node": ray.get_runtime_context().get_node_id(), "host": host, "gpus": gpus}

    def terminate(self, run: str, grace: float) -> None:
        """Stop the tool of the task run ``run`` and its whole process group (SIGTERM, SIGKILL after ``grace`` s);
        nothing when this runner has started another task's tool since."""
        if self._tool is not None and self._run == run:
            self._tool.terminate(grace)

    def wait(self) -> int | None:
        """The tool's exit status, once it has ended and its exit file is written."""
        return self._tool.wait() if self._tool is not None else None

    def usage(self) -> dict | None:
        """The hardware panel's reading, taken on this node: its GPUs and the tool's CPU and memory."""
        if self._tool is None:
            return None
        return {"gpus": gpu_usage(self._gpus), "process": process_usage(self._tool.pid)}


_RUNNER = None


def _runner_class():
    global _RUNNER
    if _RUNNER is None:
        # max_concurrency: terminate and usage are answered while wait blocks. (A threaded actor runs calls in no
        # set order: terminate and wait are sent only once start has answered.)
        _RUNNER = ray.remote(max_concurrency=4, max_restarts=0)(ToolRunner)
    return _RUNNER


def _sees_marker(path: str, token: str) -> bool:
    try:
        return Path(path).read_text() == token
    except OSError:
        return False


# -- on the server -------------------------------------------------------------------------------------
class ClusterTool:
    """A tool running in a :class:`ToolRunner` on a cluster node, seen from the server (a
    :class:`~digits.processes.RunningTool`): its events read from the events file as they are written.

    ``run`` is the task run's token in its runner; ``start_ref`` the runner's answer to starting the tool (None
    when following it again). ``on_lost(reason)`` replaces ``on_exit`` when the actor died without writing an
    exit status. What becomes of the actor after either is the caller's to decide.
    """

    def __init__(self, actor, run: str, start_ref, events: Path, exit_file: Path, offset: int, on_event, on_line,
                 on_exit: Callable[[int], None], on_lost: Callable[[str], None],
                 on_started: Callable[[dict], None]):  # fmt: skip
        self.actor = actor
        self.offset = offset  # bytes of the events file read and applied
        self._run = run
        self._start_ref = start_ref
        # wait and terminate go to the runner only once it has started the tool: it runs calls in no set order, and
        # one that came first would find the tool it started last (the previous task's), or none.
        self._lock = threading.Lock()
        self._started = start_ref is None
        self._stop_grace: float | None = None  # an abort asked for before the tool had started
        self._wait_ref = actor.wait.remote() if actor is not None and self._started else None
        self._events = events
        self._exit_file = exit_file
        self._on_event, self._on_line, self._on_exit = on_event, on_line, on_exit
        self._on_lost, self._on_started = on_lost, on_started
        self._returncode: int | None = None
        self._done = threading.Event()
        self._detached = threading.Event()
        self.node_gone = threading.Event()  # set by the scheduler when the node is no longer alive in the cluster
        self.remote_pid: int | None = None
        threading.Thread(target=self._follow, name=f"cluster-{events.parent.name}", daemon=True).start()

    @property
    def pid(self) -> int | None:
        return None  # the process is on another machine; remote_pid is its id there

    @property
    def returncode(self) -> int | None:
        return self._returncode

    def write(self, line: str) -> None:
        raise OSError("a tool on the cluster reads no stdin")

    def terminate(self, grace: float = 5.0) -> None:
        with self._lock:
            if not self._started:
                self._stop_grace = grace
                return
        if self.actor is not None:
            self.actor.terminate.remote(self._run, grace)

    def wait(self, timeout: float | None = None) -> int | None:
        if not self._done.wait(timeout):
            return None
        return self._returncode

    def detach(self) -> None:
        """Stop following (the server stops); the tool runs on and a restarted server follows it again."""
        self._detached.set()

    # -- inside --------------------------------------------------------------------------------------
    def _follow(self) -> None:
        try:
            outcome = self._follow_until_end()
        except Exception as exc:  # a broken connection must still end the task, not leave it running for ever
            log.exception("following %s failed", self._events)
            outcome = ("lost", f"the server lost the task: {exc}")
        if outcome is None:
            return
        kind, value = outcome
        try:
            if kind == "exit":
                self._returncode = value
                self._on_exit(value)
            else:
                self._on_lost(value)
        finally:
            self._done.set()

    def _follow_until_end(self) -> tuple[str, Any] | None:
        dead_since: float | None = None
        while not self._detached.is_set():
            if not self._started and ray.wait([self._start_ref], timeout=0)[0]:
                try:
                    where = ray.get(self._start_ref)
                except RayError as exc:
                    return "lost", f"could not start the task on its node: {_cause(exc)}"
                self._on_started(where)
                self._wait_ref = self.actor.wait.remote()
                with self._lock:
                    self._started = True
                    grace = self._stop_grace
                if grace is not None:
                    self.actor.terminate.remote(self._run, grace)
            self._read_new_lines()
            if self._exit_file.exists():
                self._read_new_lines()
                return "exit", int(json.loads(self._exit_file.read_text())["returncode"])
            if dead_since is None and (self.node_gone.is_set() or self._actor_dead()):
                dead_since = time.monotonic()
            # A dead actor's last lines and exit file may reach this machine's view of the storage late (NFS).
            if dead_since is not None and time.monotonic() - dead_since > 3.0:
                return "lost", "its actor is gone"
            time.sleep(POLL_INTERVAL)
        return None

    def _actor_dead(self) -> bool:
        if self._wait_ref is None:
            return self.actor is None  # gone at a restart; one still starting the tool is not dead
        if not ray.wait([self._wait_ref], timeout=0)[0]:
            return False
        try:
            ray.get(self._wait_ref)
            return False  # it ended normally: the exit file says how
        except RayActorError:
            return True

    def _read_new_lines(self) -> None:
        try:
            with open(self._events, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except FileNotFoundError:
            return
        end = chunk.rfind(b"\n")
        if end < 0:
            return
        for line in chunk[: end + 1].splitlines(keepends=True):
            self.offset += len(line)
            try:
                event = json.loads(line)
            except ValueError:
                event = None
            if isinstance(event, dict):
                self._on_event(event, self.offset)
            else:
                self._on_line(line.decode(errors="replace"))


def _cause(exc: Exception) -> str:
    cause = getattr(exc, "cause", None)
    return str(cause or exc).strip().splitlines()[-1]


class ClusterPools:
    """The cluster's nodes as the scheduler's resource pools: what each has (from Ray), what DIGITS' tasks
    hold on each, and which nodes cannot see the jobs directory (they get no tasks).

    An assignment is ``{"node", "node_name", "num_gpus", "num_cpus"}``; :class:`RayScheduler` adds the
    actor's name and, once the tool runs, its GPUs and pid there.
    """

    def __init__(self, address: str):
        self.address = address
        self.problem: str | None = f"connecting to the cluster {address}"
        self.nodes: dict[str, dict] = {}  # node id -> {"name", "gpus", "cpus"}
        self.blind: dict[str, str] = {}  # node id -> why the jobs directory is not usable there
        self._held: dict[str, dict[str, float]] = {}
        self._lock = threading.Lock()

    @property
    def gpus(self) -> list[Gpu]:
        """The GPUs of the largest node: what one task may ask for (the forms offer these)."""
        return [Gpu(i, f"GPU {i} of a cluster node", 0) for i in range(self._largest_gpus())]

    def _largest_gpus(self) -> int:
        with self._lock:
            return max((int(n["gpus"]) for i, n in self.nodes.items() if i not in self.blind), default=0)

    def set_nodes(self, nodes: dict[str, dict]) -> None:
        with self._lock:
            self.nodes = nodes

    def missing(self, request: dict[str, Any]) -> str | None:
        """Why ``request`` can never be met on the cluster (more GPUs than its largest node has), or None."""
        wanted = request.get("gpus")
        count = len(wanted) if isinstance(wanted, list) else int(wanted or 0)
        largest = self._largest_gpus()
        if self.nodes and count > largest:
            return f"{gpus_asked(count)} but the largest node of the cluster has {largest}"
        return None

    def try_reserve(self, request: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
        """Hold room for ``request`` on the node with the most of it free: (assignment, "") or (None, why not)."""
        if self.problem:
            return None, f"waiting: {self.problem}"
        wanted = request.get("gpus")
        gpus = len(wanted) if isinstance(wanted, list) else int(wanted or 0)
        cpus = 0 if gpus else float(request.get("cpu", 0))
        with self._lock:
            room = []
            for node_id, node in self.nodes.items():
                if node_id in self.blind:
                    continue
                held = self._held.get(node_id, {})
                free_gpus = node["gpus"] - held.get("gpus", 0)
                free_cpus = node["cpus"] - held.get("cpus", 0)
                if free_gpus >= gpus and free_cpus >= cpus:
                    room.append((free_gpus if gpus else free_cpus, node_id))
            if not room:
                what = ("a GPU" if gpus == 1 else f"{gpus} GPUs") if gpus else "a CPU slot"
                return None, f"waiting for {what} on a cluster node ({self._free_text()})"
            node_id = max(room)[1]
            self._hold(node_id, gpus, cpus, +1)
            return {"node": node_id, "node_name": self.nodes[node_id]["name"], "num_gpus": gpus,
                    "num_cpus": cpus}, ""  # fmt: skip

    def room(self) -> dict[str, dict]:
        """What DIGITS' tasks leave free on each node that sees the jobs directory: node id -> ``{"name", "gpus",
        "cpus"}``."""
        with self._lock:
            return {
                node_id: {"name": node["name"], "gpus": node["gpus"] - self._held.get(node_id, {}).get("gpus", 0),
                          "cpus": node["cpus"] - self._held.get(node_id, {}).get("cpus", 0)}
                for node_id, node in self.nodes.items() if node_id not in self.blind
            }  # fmt: skip

    def reserve(self, assignment: dict[str, Any]) -> None:
        """Hold what a task found running after a restart holds."""
        with self._lock:
            self._hold(assignment["node"], assignment.get("num_gpus", 0), assignment.get("num_cpus", 0), +1)

    def release(self, assignment: dict[str, Any]) -> None:
        if not assignment.get("node"):
            return
        with self._lock:
            self._hold(assignment["node"], assignment.get("num_gpus", 0), assignment.get("num_cpus", 0), -1)

    def _hold(self, node_id: str, gpus: float, cpus: float, sign: int) -> None:
        held = self._held.setdefault(node_id, {"gpus": 0, "cpus": 0})
        held["gpus"] += sign * gpus
        held["cpus"] += sign * cpus

    def _free_text(self) -> str:
        parts = []
        for node_id, node in self.nodes.items():
            held = self._held.get(node_id, {})
            if node_id in self.blind:
                parts.append(f"{node['name']}: none, it does not see the jobs directory")
                continue
            parts.append(f"{node['name']}: {node['gpus'] - held.get('gpus', 0):g}/{node['gpus']:g} GPUs, "
                         f"{node['cpus'] - held.get('cpus', 0):g}/{node['cpus']:g} CPU slots free")  # fmt: skip
        return "; ".join(parts) or "no node"

    def describe(self) -> dict[str, Any]:
        with self._lock:
            nodes = [
                {"id": node_id, "name": node["name"], "gpus": node["gpus"], "cpus": node["cpus"],
                 "gpus_busy": self._held.get(node_id, {}).get("gpus", 0),
                 "cpus_busy": self._held.get(node_id, {}).get("cpus", 0), "problem": self.blind.get(node_id)}
                for node_id, node in self.nodes.items()
            ]  # fmt: skip
            return {
                "cluster": self.address,
                "problem": self.problem,
                "nodes": nodes,
                "gpus": [],
                "cpu_slots": sum(n["cpus"] for n in nodes),
                "cpu_slots_busy": sum(n["cpus_busy"] for n in nodes),
            }


class IdleRunners:
    """Runner actors started ahead of the tasks: a task placed on a node takes the idle runner of its shape
    there and starts its tool at once, rather than waiting for Ray to start a worker process for a new one
    (with the runner's runtime env: half a second on a quiet node, seconds on a busy one).

    Each node keeps one idle runner per shape of :data:`IDLE_SHAPES` that fits in the room DIGITS' tasks leave
    there. An idle runner holds its shape's resources in Ray: it stands for the next task of that shape on its
    node, in that room, so it never competes with a task's runner. A runner whose task has ended is idle again
    (:meth:`give_back`), so tasks that follow one another on a full node need no new worker either; one is started
    (:meth:`fill`) where a node has room and no idle runner of a shape. Runners are detached and named
    ``runner/<server>/<token>``, with ``<server>`` from the jobs directory, so that the next server of that
    directory can tell the ones a killed server left idle (:meth:`end_leftovers`).
    """

    def __init__(self, jobs_dir: Path):
        self.prefix = f"runner/{hashlib.sha256(str(jobs_dir.resolve()).encode()).hexdigest()[:8]}/"
        # (node id, GPUs, CPU slots) -> (name, actor, its __ray_ready__ call)
        self._idle: dict[tuple[str, int, float], tuple[str, Any, Any]] = {}
        self._lock = threading.Lock()

    def start(self, node: str, gpus: int, cpus: float) -> tuple[str, Any]:
        """A new runner on ``node`` holding ``gpus`` GPUs and ``cpus`` CPU slots; returns (its name, its handle)."""
        name = self.prefix + secrets.token_hex(4)
        actor = (
            _runner_class()
            .options(
                name=name,
                namespace=NAMESPACE,
                lifetime="detached",
                num_gpus=gpus,
                num_cpus=cpus,
                scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False),
                runtime_env=RUNNER_ENV,
            )
            .remote()
        )
        return name, actor

    def take(self, node: str, gpus: int, cpus: float) -> tuple[str, Any] | None:
        """The idle runner of this shape on ``node`` (it may still be starting: its calls wait for it), or None."""
        with self._lock:
            idle = self._idle.pop((node, gpus, cpus), None)
        if idle is None or _failed(idle[2]):
            return None
        return idle[0], idle[1]

    def give_back(self, node: str, gpus: int, cpus: float, name: str, actor) -> None:
        """Keep the runner of a task that has ended as the idle runner of its shape on ``node``; end it when its
        shape is not one of :data:`IDLE_SHAPES` or the node has an idle runner of that shape already."""
        key = (node, gpus, cpus)
        with self._lock:
            keep = (gpus, cpus) in IDLE_SHAPES and key not in self._idle
            if keep:
                self._idle[key] = (name, actor, actor.__ray_ready__.remote())
        if not keep:
            _kill(actor)

    def make_room(self, node: str, gpus: int, cpus: float) -> None:
        """End the idle runners on ``node`` that hold what a task of another shape needs there (GPUs, CPU slots): Ray
        would keep that task's runner pending behind them. The next :meth:`fill` starts them again."""
        with self._lock:
            keys = [key for key in self._idle if key[0] == node and ((gpus and key[1]) or (cpus and key[2]))]
            ended = [self._idle.pop(key) for key in keys]
        for _, actor, _ in ended:
            _kill(actor)

    def fill(self, room: dict[str, dict]) -> None:
        """Start an idle runner for each shape that has none on its node and fits in the node's ``room`` (node id ->
        ``{"name", "gpus", "cpus"}`` free of DIGITS' tasks), or whose runner failed to start; end the runners of
        nodes not in ``room`` (most ended with their node)."""
        with self._lock:
            gone = [self._idle.pop(key) for key in list(self._idle) if key[0] not in room]
            for node_id, free in room.items():
                for gpus, cpus in IDLE_SHAPES:
                    key = (node_id, gpus, cpus)
                    if key in self._idle and _failed(self._idle[key][2]):
                        log.warning("an idle runner on node %s did not start; starting another", free["name"])
                        del self._idle[key]
                    if key not in self._idle and free["gpus"] >= gpus and free["cpus"] >= cpus:
                        name, actor = self.start(node_id, gpus, cpus)
                        self._idle[key] = (name, actor, actor.__ray_ready__.remote())
        for _, actor, _ in gone:
            _kill(actor)

    def end_leftovers(self, in_use: set[str]) -> None:
        """End this server's runners that are neither idle here nor named in ``in_use`` (the runners that tasks record):
        the ones a killed server left idle, or started for a task it had not saved yet."""
        with self._lock:
            idle = {name for name, _, _ in self._idle.values()}
        try:
            names = ray.util.list_named_actors()
        except RayError as exc:
            log.warning("cannot list the cluster's runners (those left idle hold their room): %s", exc)
            return
        for name in names:
            if name.startswith(self.prefix) and name not in in_use and name not in idle:
                try:
                    _kill(ray.get_actor(name, namespace=NAMESPACE))
                except ValueError:
                    pass  # it ended meanwhile

    def stop(self) -> None:
        """End every idle runner: the server stops, and a detached actor would hold its room in Ray until the next."""
        with self._lock:
            ended, self._idle = list(self._idle.values()), {}
        for _, actor, _ in ended:
            _kill(actor)


def _failed(ready_ref) -> bool:
    """Whether the actor whose ``__ray_ready__`` call this is has failed to start (or died); False while it starts."""
    if not ray.wait([ready_ref], timeout=0)[0]:
        return False
    try:
        ray.get(ready_ref)
        return False
    except RayError:
        return True


def _kill(actor) -> None:
    try:
        ray.kill(actor)  # detached: it would hold its node's resources for ever
    except RayError:
        pass


class RayScheduler(LocalScheduler):
    """The scheduler with its tasks on a Ray cluster (see the module's docstring)."""

    def __init__(self, store: JobStore, address: str, on_change: OnChange = lambda job, task: None,
                 kill_grace: float = 5.0):  # fmt: skip
        super().__init__(store, ClusterPools(address), on_change=on_change, kill_grace=kill_grace)
        self.address = address
        self._connected = False
        self._checked: set[str] = set()  # nodes whose view of the jobs directory was checked
        self.runners = IdleRunners(store.jobs_dir)

    # -- connection and nodes ------------------------------------------------------------------------
    def _loop(self) -> None:
        next_refresh = 0.0
        while not self._stopping:
            if not self._connected:
                if not self._connect():
                    self._say_why_tasks_wait()
                    self._sleep(RECONNECT_INTERVAL)
                    continue
                self._refresh_nodes()
                self._find_running_tasks()
            elif time.monotonic() >= next_refresh:
                self._refresh_nodes()
                next_refresh = time.monotonic() + NODE_REFRESH
            with self._wake:
                try:
                    self._place_tasks()
                    self.runners.fill(self.pools.room())  # after placing: the room a task just left or took
                except Exception:  # one job's trouble must not stop every other job from starting
                    log.exception("placing tasks failed")
                self._wake.wait(timeout=1.0)

    def _watch_connecting(self, connected: threading.Event) -> None:
        """ray.init waits for ever on an address where something that is not Ray listens: past CONNECT_PATIENCE
        seconds, say so, and keep every waiting task saying it while the scheduler's thread is held there."""
        if connected.wait(CONNECT_PATIENCE):
            return
        self.pools.problem = silence_problem(self.address, CONNECT_PATIENCE)
        log.error("%s", self.pools.problem)
        while not connected.wait(1.0) and not self._stopping:
            self._say_why_tasks_wait()

    def _say_why_tasks_wait(self) -> None:
        """While the cluster cannot be used, every waiting task says why (none can be placed)."""
        with self._wake:
            try:
                self._place_tasks()
            except Exception:
                log.exception("placing tasks failed")

    def _sleep(self, seconds: float) -> None:
        with self._wake:
            self._wake.wait(timeout=seconds)

    def _connect(self) -> bool:
        # Knocked on first: ray.init on a GCS address where nothing listens retries for ever, saying nothing.
        problem = address_problem(self.address)
        if problem is None:
            connecting = threading.Event()
            threading.Thread(target=self._watch_connecting, args=(connecting,), name="cluster-connect",
                             daemon=True).start()  # fmt: skip
            try:
                ray.init(address=self.address, namespace=NAMESPACE, log_to_driver=False,
                         logging_level=logging.WARNING, ignore_reinit_error=True)  # fmt: skip
            except Exception as exc:  # a Ray version that differs, a refused handshake: say so, keep serving
                problem = connection_problem(self.address, exc)
            finally:
                connecting.set()
        if problem:
            self.pools.problem = f"{problem} (tried again every {RECONNECT_INTERVAL:g} s)"
            log.error("%s", self.pools.problem)
            return False
        self._connected = True
        self.pools.problem = None
        log.info("connected to the Ray cluster %s", self.address)
        return True

    def _refresh_nodes(self) -> None:
        try:
            alive = [n for n in ray.nodes() if n.get("Alive")]
        except Exception as exc:
            log.warning("cannot read the cluster's nodes: %s", exc)
            return
        nodes = {
            n["NodeID"]: {"name": n.get("NodeName") or n.get("NodeManagerAddress", n["NodeID"][:8]),
                          "gpus": n["Resources"].get("GPU", 0), "cpus": n["Resources"].get("CPU", 0)}
            for n in alive
        }  # fmt: skip
        new = [node_id for node_id in nodes if node_id not in self._checked]
        if new:
            self._check_storage(new, nodes)
        self.pools.set_nodes(nodes)
        # Ray fails an actor's calls only once it has given its node up; the node list says so as soon.
        with self._wake:
            for run in self._runs.values():
                if isinstance(run.tool, ClusterTool) and run.task.assigned.get("node") not in nodes:
                    run.tool.node_gone.set()

    def node_left(self, node_id: str | None) -> bool:
        """Whether the node ``node_id`` has left the cluster, by the node list read anew (False when the cluster
        cannot be asked: the list then stays as it was)."""
        self._refresh_nodes()
        return node_id not in self.pools.nodes

    def place_again(self, run: TaskRun, why: str) -> None:
        """Put the task of ``run``, whose tool never started, back in the queue with its room given back."""
        job, task = run.job, run.task
        run.lists.close()
        with self._wake:
            self._runs.pop((job.id, task.id), None)
            self.pools.release(task.assigned)
            task.status, task.assigned, task.started, task.waiting_for = Status.WAITING, {}, None, why
            self._changed(job, task, significant=True)
            self._wake.notify()

    def _check_storage(self, node_ids: list[str], nodes: dict[str, dict]) -> None:
        """Ask a task on each of ``node_ids`` whether it sees the jobs directory; the ones that do not are left
        out of placement and named in the log and the queue."""
        marker = self.store.jobs_dir / MARKER_FILE
        token = secrets.token_hex(16)
        write_json_atomic(marker, token)
        expected = json.dumps(token)
        check = ray.remote(num_cpus=0, max_retries=0)(_sees_marker)
        refs = {
            node_id: check.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False)).remote(
                str(marker), expected
            )
            for node_id in node_ids
        }
        for node_id, ref in refs.items():
            name = nodes[node_id]["name"]
            try:
                seen = ray.get(ref, timeout=60)
                why = None if seen else f"node {name} does not see the jobs directory {self.store.jobs_dir}"
            except (GetTimeoutError, RayError) as exc:
                why = f"node {name} could not check the jobs directory {self.store.jobs_dir}: {_cause(exc)}"
            self._checked.add(node_id)
            if why:
                why += ". It gets no tasks: mount the jobs directory on it at the same path, then restart DIGITS"
                self.pools.blind[node_id] = why
                log.error("%s", why)

    # -- tasks ---------------------------------------------------------------------------------------
    def _new_run(self, job: Job, task: Task) -> TaskRun:
        return ClusterTaskRun(self, job, task)

    def _find_running_tasks(self) -> None:
        """After a (re)start: follow again the tasks ``job.json`` says run on the cluster, and end the runners that
        run none of them."""
        with self._wake:
            for job in self.store.all():
                for task in job.tasks:
                    if is_cluster_task(task):
                        run = ClusterTaskRun(self, job, task)
                        self._runs[(job.id, task.id)] = run
                        self.pools.reserve(task.assigned)
                        run.attach()
                        log.info("job %s: following task %s again on %s", job.id, task.id,
                                 task.assigned.get("node_name"))  # fmt: skip
            in_use = {run.task.assigned["actor"] for run in self._runs.values()}
        self.runners.end_leftovers(in_use)

    def usage(self, job: Job, task: Task) -> dict | None:
        """The hardware panel's reading of a running task, taken on its node (None when it is not running)."""
        with self._wake:
            run = self._runs.get((job.id, task.id))
            tool = run.tool if run else None
        if not isinstance(tool, ClusterTool) or tool.actor is None:
            return None
        try:
            reading = ray.get(tool.actor.usage.remote(), timeout=2)
        except (GetTimeoutError, RayError):
            return None
        if reading is not None:
            reading["node"] = task.assigned.get("node_name")
        return reading

    def describe(self) -> dict:
        """The cluster as the queue shows it: each node, what it has and what DIGITS' tasks hold."""
        return self.pools.describe()

    def shutdown(self) -> None:
        """Stop following the tasks and leave them running: a restarted server finds them again."""
        with self._wake:
            self._stopping = True
            runs = list(self._runs.values())
            self._wake.notify()
        for run in runs:
            if isinstance(run.tool, ClusterTool):
                run.tool.detach()
        if self._thread:
            self._thread.join(timeout=5)
        self.store.flush(timeout=5)
        if self._connected:
            self.runners.stop()
            ray.shutdown()


class ClusterTaskRun(TaskRun):
    """A task's tool in a :class:`ToolRunner` on a node; events come from :class:`ClusterTool`."""

    def start(self) -> None:
        """Start the task's tool on the node its assignment names: in the idle runner of its shape there, or in a
        new runner when there is none."""
        job, task = self.job, self.task
        assigned = task.assigned
        runners = self.scheduler.runners
        where = (assigned["node"], assigned["num_gpus"], assigned["num_cpus"])
        runner = runners.take(*where)
        if runner is None:
            runners.make_room(*where)
            runner = runners.start(*where)
        assigned["actor"], actor = runner
        assigned["run"] = secrets.token_hex(4)
        assigned["events_read"] = 0
        exit_path(job, task).unlink(missing_ok=True)
        events_path(job, task).unlink(missing_ok=True)
        args = task.command(self.scheduler.python)[1:]
        start_ref = actor.start.remote(assigned["run"], args, job.directory, task.log_name, str(events_path(job, task)),
                                       str(exit_path(job, task)))  # fmt: skip
        self.tool = self._follow(actor, start_ref, 0)

    def attach(self) -> None:
        """Follow the task again after a restart: its actor if it still runs, its exit file if it ended."""
        try:
            actor = ray.get_actor(self.task.assigned["actor"], namespace=NAMESPACE)
        except ValueError:
            actor = None  # gone: its exit file tells how it ended, or its node died
        self._trim_lists()
        self.tool = self._follow(actor, None, int(self.task.assigned.get("events_read", 0)))

    def _follow(self, actor, start_ref, offset: int) -> ClusterTool:
        job, task = self.job, self.task
        return ClusterTool(actor, task.assigned.get("run", ""), start_ref, events_path(job, task), exit_path(job, task),
                           offset, on_event=self._on_cluster_event, on_line=self._on_line,
                           on_exit=lambda returncode: self._exited(actor, returncode),
                           on_lost=lambda reason: self._lost(actor, reason), on_started=self._started)  # fmt: skip

    def _on_cluster_event(self, event: dict, offset: int) -> None:
        # The offset changes with the state it describes, under the lock: job.json never records an event
        # as read that it has not applied, nor applied one it says is unread.
        with self.scheduler._wake:
            self.task.assigned["events_read"] = offset
            self._on_event(event)

    def _started(self, where: dict) -> None:
        with self.scheduler._wake:
            self.task.assigned.update(pid=where["pid"], gpus=where["gpus"], host=where["host"])
            self.scheduler._changed(self.job, self.task, significant=True)

    def _exited(self, actor, returncode: int) -> None:
        # In one step under the lock, so that the scheduler sees the task's room free and its runner idle in it
        # together (not room for a new runner).
        with self.scheduler._wake:
            if actor is not None:
                assigned = self.task.assigned
                self.scheduler.runners.give_back(assigned["node"], assigned["num_gpus"], assigned["num_cpus"],
                                                 assigned["actor"], actor)  # fmt: skip
            self.scheduler._task_ended(self, returncode)

    def _lost(self, actor, reason: str) -> None:
        if actor is not None:
            _kill(actor)  # whatever is left of it
        node = self.task.assigned.get("node_name")
        log.error("job %s: task %s on %s lost: %s", self.job.id, self.task.id, node, reason)
        if reason.startswith("could not start"):
            if self.scheduler.node_left(self.task.assigned.get("node")):
                # Placed on a node that was leaving (the node list is read every two seconds): nothing ran,
                # so the task waits for room on the nodes that are left instead of failing.
                self.scheduler.place_again(self, f"waiting to be placed again: node {node} left the cluster")
                return
            self.failure = reason  # an Error: nothing ran
            self.scheduler._task_ended(self, -1)
            return
        self.interrupted = True
        self.scheduler._task_ended(self, -9)
        with self.scheduler._wake:
            self.task.error = {"message": NODE_LOST_MESSAGE.format(node=node), "traceback": ""}
            self.scheduler._changed(self.job, self.task, significant=True)

    def _trim_lists(self) -> None:
        """Cut the task's list files back to what ``job.json`` counted: the events after its offset are read
        again, and would otherwise be listed twice."""
        for name in lists.LIST_FILES:
            path = lists.list_path(self.job.directory, self.task.id, name)
            if not path.exists():
                continue
            keep = lists.count(self.task.data, name)
            lines = path.read_bytes().splitlines(keepends=True)
            if len(lines) > keep:
                tmp = path.with_name(path.name + ".trim")
                tmp.write_bytes(b"".join(lines[:keep]))
                os.replace(tmp, path)
