"""Several training processes on one machine: DistributedDataParallel, one process per GPU (nccl), or
``--processes N`` processes on the CPU (gloo), started by the tool itself.

The command the scheduler runs is the launcher (:func:`launch`): it starts one process per rank, each the
same command line with ``DIGITS_TORCH_RANK``, ``DIGITS_TORCH_WORLD_SIZE`` and ``DIGITS_TORCH_PORT`` set, and
waits for them. The job sees one stream of events: the launcher passes on rank 0's events and log as they
come, and the other ranks' only when one of them fails first (its error event and the end of its log).
SIGTERM to the launcher reaches every rank; when one rank fails, the others are stopped, so no process is
left behind.

In a rank, :class:`Ranks` is its place among them: rank 0 of 1 when training is not distributed, where every
method does nothing but return its argument, so one code path serves both.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from datetime import timedelta

import torch
import torch.distributed as dist

from digits.tools.protocol import PARENT_PID_ENV, emit
from digits.tools.training import log

RANK_ENV, WORLD_SIZE_ENV, PORT_ENV = "DIGITS_TORCH_RANK", "DIGITS_TORCH_WORLD_SIZE", "DIGITS_TORCH_PORT"
# After one rank has failed, the others have this long to stop on SIGTERM before they are killed (a rank
# waiting on NCCL for the failed one never gets back to look at the signal).
STOP_GRACE_SECONDS = 10.0
LOG_TAIL_LINES = 40
# A rank that waits longer than this for the others (one hangs) fails rather than waits forever.
COLLECTIVE_TIMEOUT = timedelta(minutes=10)


class Ranks:
    """The training processes as one of them sees them: ``rank`` among ``world``, and their collectives.

    Gradients are averaged by DistributedDataParallel; what else the ranks must agree on goes through here:
    flags (SIGTERM, a report due) over a gloo group, so agreeing never waits for a GPU, and sums of device
    tensors (metrics) over the training backend.
    """

    def __init__(self, rank: int = 0, world: int = 1):
        self.rank, self.world = rank, world
        self.flags_group = None

    @classmethod
    def from_environment(cls) -> Ranks:
        """This process's place as the launcher's environment gives it; rank 0 of 1 without a launcher."""
        if RANK_ENV not in os.environ:
            return cls()
        return cls(int(os.environ[RANK_ENV]), int(os.environ[WORLD_SIZE_ENV]))

    def join(self, device: torch.device) -> None:
        """Join the other ranks' process group (nccl for GPUs, gloo on the CPU), training on ``device``."""
        if not self.distributed:
            return
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(
            backend, init_method=f"tcp://127.0.0.1:{os.environ[PORT_ENV]}", rank=self.rank, world_size=self.world,
            timeout=COLLECTIVE_TIMEOUT,
        )  # fmt: skip
        self.flags_group = dist.new_group(backend="gloo") if backend != "gloo" else dist.group.WORLD

    @property
    def main(self) -> bool:
        """Whether this is rank 0, the one that saves snapshots and TensorBoard summaries."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """Whether there are other ranks."""
        return self.world > 1

    def agree(self, *flags: bool) -> list[bool]:
        """Each flag, true on every rank when it is true on any (SIGTERM reached one, a report is due)."""
        if not self.distributed:
            return list(flags)
        values = torch.tensor(flags, dtype=torch.uint8)
        dist.all_reduce(values, op=dist.ReduceOp.MAX, group=self.flags_group)
        return [bool(v) for v in values.tolist()]

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """``values`` (on the training device) summed over the ranks."""
        if self.distributed:
            dist.all_reduce(values)
        return values

    def gather(self, value: object) -> list:
        """``value`` of every rank (any picklable value), in rank order."""
        if not self.distributed:
            return [value]
        values: list = [None] * self.world
        dist.all_gather_object(values, value, group=self.flags_group)
        return values

    def same_seed(self, seed: int | None) -> int | None:
        """``seed``, or for an unseeded run of several ranks one drawn by rank 0: the ranks must visit the
        records in the same order to share out each batch."""
        if seed is not None or not self.distributed:
            return seed
        drawn = torch.randint(0, 2**62, (1,), dtype=torch.int64)
        dist.broadcast(drawn, src=0, group=self.flags_group)
        return int(drawn.item())

    def close(self) -> None:
        """Leave the process group."""
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()


def is_rank() -> bool:
    """Whether this process is one of the ranks a launcher started."""
    return RANK_ENV in os.environ


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on now (rank 0 listens on it next)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RankProcess:
    """One rank started by the launcher: its process, the error event it wrote, the end of its log."""

    def __init__(self, rank: int, world: int, port: int, argv: Sequence[str]):
        self.rank = rank
        env = {**os.environ, RANK_ENV: str(rank), WORLD_SIZE_ENV: str(world), PORT_ENV: str(port),
               PARENT_PID_ENV: str(os.getpid())}  # fmt: skip
        # Rank 0 writes to the job's log itself; the others' logs are kept only to show when they fail.
        self.process = subprocess.Popen(
            [sys.executable, "-m", "digits.tools.torch.main", *argv], env=env, stdout=subprocess.PIPE,
            stderr=None if rank == 0 else subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, bufsize=1,
        )  # fmt: skip
        self.error: dict | None = None
        self.tail: collections.deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)

    def relay(self) -> None:
        """Read the rank's output until it ends: rank 0's events and lines are passed on, every rank's error
        event is kept (the launcher reports one, once), other ranks' events are dropped."""
        for line in self.process.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                event = None
            is_event = isinstance(event, dict) and "event" in event
            if is_event and event["event"] == "error":
                self.error = event
            elif self.rank == 0 and is_event:
                emit(**event)
            elif self.rank == 0:
                sys.stdout.write(line)
                sys.stdout.flush()
            elif not is_event:
                self.tail.append(line)

    def keep_log(self) -> None:
        """Keep the end of a rank's log (ranks other than 0)."""
        for line in self.process.stderr:
            self.tail.append(line)


def launch(argv: Sequence[str], world: int) -> int:
    """Run ``world`` ranks of the training tool with the command line ``argv`` until every one has ended;
    returns the exit status: 0 when all are done, 143 when SIGTERM stopped them, 1 after the error event of
    the first rank that failed."""
    port = free_port()
    ranks = [RankProcess(rank, world, port, argv) for rank in range(world)]
    ended: list[tuple[RankProcess, int]] = []
    changed = threading.Condition()
    terminated = threading.Event()

    def watch(rank: RankProcess) -> None:
        rank.relay()
        status = rank.process.wait()
        with changed:
            ended.append((rank, status))
            changed.notify()

    def stop_all() -> None:
        for rank in ranks:
            if rank.process.poll() is None:
                rank.process.send_signal(signal.SIGTERM)

    def on_sigterm(signum, frame) -> None:
        terminated.set()
        stop_all()

    signal.signal(signal.SIGTERM, on_sigterm)
    readers = [threading.Thread(target=watch, args=(rank,), daemon=True) for rank in ranks]
    readers += [threading.Thread(target=r.keep_log, daemon=True) for r in ranks if r.process.stderr is not None]
    for reader in readers:
        reader.start()
    with changed:
        changed.wait_for(lambda: len(ended) == world or any(status != 0 for _, status in ended))
        if len(ended) < world:
            # One rank failed or was stopped: the others stop too, killed when they cannot.
            stop_all()
            if not changed.wait_for(lambda: len(ended) == world, timeout=STOP_GRACE_SECONDS):
                for rank in ranks:
                    if rank.process.poll() is None:
                        rank.process.kill()
                changed.wait_for(lambda: len(ended) == world)
    for reader in readers:
        reader.join()
    failed = [(rank, status) for rank, status in ended if status != 0]
    if not failed:
        return 0
    # Stopped by SIGTERM (to the launcher, or to the ranks' process group): no error, as for one process.
    if terminated.is_set() or failed[0][1] in (143, -signal.SIGTERM):
        return 143
    first, status = failed[0]
    # The same error on rank 0 (a mistake every rank makes) is reported as rank 0's, whose log the job has.
    if first.error and ranks[0].error and first.error.get("message") == ranks[0].error.get("message"):
        first = ranks[0]
    return report_failure(first, status, world)


def report_failure(rank: RankProcess, status: int, world: int) -> int:
    """Emit the error of ``rank``, the first rank to fail (with the end of its log when it is not rank 0's,
    which is in the job's log already); returns 1."""
    if rank.rank != 0 and rank.tail:
        log(f"rank {rank.rank} of {world} failed first; the end of its log:")
        sys.stderr.writelines(rank.tail)
        sys.stderr.flush()
    if rank.error is not None:
        emit(**rank.error)
    else:
        how = f"was killed by signal {-status}" if status < 0 else f"ended with status {status}"
        why = " (out of memory?)" if status == -signal.SIGKILL else ""
        emit("error", message=f"training process {rank.rank} of {world} {how}{why}")
    return 1
