"""The PyTorch tool with several training processes (DistributedDataParallel), as on several GPUs but over gloo on
the CPU (``--processes 2``): what the job sees is one run, learning as one process does, stopped whole."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tool_runs
from tool_runs import REPO, digits_dataset, events_of

torch = pytest.importorskip("torch")

LENET = REPO / "digits" / "standard_networks" / "torch" / "lenet.py"
TOOL = "digits.tools.torch.main"
ENV = {"OMP_NUM_THREADS": "2"}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """The small digits dataset (40 images a class; 300 to train, 100 to validate)."""
    return digits_dataset(tmp_path_factory.mktemp("dataset"), per_class=40, env=ENV)


def tool_args(dataset: Path, network: Path = LENET) -> list:
    return [
        "--network", network, "--train-db", dataset / "train_db", "--val-db", dataset / "val_db",
        "--labels", dataset / "labels.txt", "--mean", dataset / "mean.npy", "--subtract-mean", "image",
        "--batch-size", 32, "--seed", 1, "--solver", "ADAM", "--learning-rate", 0.001,
    ]  # fmt: skip


def train(dataset: Path, job: Path, *args, network: Path = LENET) -> tuple[int, list[dict], str]:
    job.mkdir()
    return tool_runs.run_module(TOOL, *tool_args(dataset, network), *args, cwd=job, env=ENV)


def session_processes(session: int) -> list[int]:
    """The processes of the session that ``session`` leads (the tool and whatever it started)."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == session:  # after the name: state, ppid, pgrp, session
            found.append(int(entry))
    return found


def test_two_processes_make_one_run_that_learns_as_one_process(dataset, tmp_path):
    status, single, stderr = train(dataset, tmp_path / "one", "--epochs", 3)
    assert status == 0, stderr
    status, events, stderr = train(dataset, tmp_path / "two", "--epochs", 3, "--processes", 2)
    assert status == 0, stderr
    assert "starting 2 training processes (DistributedDataParallel over gloo)" in stderr
    assert stderr.count("training 29 steps of 32 images") == 1  # one log: rank 0's

    # One stream, as one process writes it: every epoch once, in order, each snapshot once, one result.
    train_epochs = [e["epoch"] for e in events_of(events, "metrics") if "train" in e]
    assert train_epochs == sorted(set(train_epochs)) and train_epochs[-1] == 3.0
    assert [e["epoch"] for e in events_of(events, "metrics") if "val" in e] == [1.0, 2.0, 3.0]
    assert [e["epoch"] for e in events_of(events, "snapshot")] == [1.0, 2.0, 3.0]
    assert len([e for e in events_of(events, "result") if "epochs_done" in e]) == 1
    done = [e["done"] for e in events_of(events, "progress")]
    assert done == sorted(set(done)) and done[-1] == events_of(single, "progress")[-1]["total"] == 29
    assert len(list((tmp_path / "two" / "tb").iterdir())) == 1  # rank 0's summaries alone

    # The snapshot is one model's, loaded as the model page and inference load it.
    from digits.tools.torch.network import build_model, load_network

    saved = torch.load(tmp_path / "two" / "snapshot_3.0.pt", weights_only=True)
    model = build_model(load_network(str(LENET)), str(LENET), **saved["facts"])
    model.load_state_dict(saved["model"])

    # Each process trains on half of every batch of 32: together they learn as one process does.
    one, two = ([e["val"] for e in events_of(run, "metrics") if "val" in e][-1] for run in (single, events))
    assert one["accuracy"] > 0.7 and abs(two["accuracy"] - one["accuracy"]) <= 0.06, (one, two)
    assert two["loss"] == pytest.approx(one["loss"], rel=0.25)


def test_sigterm_stops_every_process(dataset, tmp_path):
    job = tmp_path / "job"
    job.mkdir()
    command = [sys.executable, "-m", TOOL, *map(str, tool_args(dataset)), "--epochs", 100, "--processes", 2]
    env = {**os.environ, "PYTHONPATH": str(REPO), **ENV}
    tool = subprocess.Popen(list(map(str, command)), cwd=job, env=env, stdout=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    try:
        for line in tool.stdout:
            if json.loads(line)["event"] == "metrics":
                break
        running = session_processes(tool.pid)
        tool.send_signal(signal.SIGTERM)  # to the launcher alone, as `kill PID` by hand
        started = time.monotonic()
        rest = [json.loads(line) for line in tool.stdout]
        status = tool.wait(timeout=60)
    finally:
        if tool.poll() is None:
            os.killpg(tool.pid, signal.SIGKILL)
    assert len(running) == 3  # the launcher and its two ranks
    assert status == 143 and time.monotonic() - started < 30
    assert not events_of(rest, "error")
    assert session_processes(tool.pid) == []


# Only the rank with the smaller half of a batch of 33 (16 images) fails: the other waits for it in vain.
FAILING_LINE = '            raise ValueError("a batch of 16")'
ONE_RANK_FAILS = LENET.read_text().replace(
    "        x = x * 0.0125", f"        if len(x) == 16:\n{FAILING_LINE}\n        x = x * 0.0125"
)


def test_a_process_that_fails_stops_the_others_and_its_error_is_the_jobs(dataset, tmp_path):
    network = tmp_path / "network.py"
    network.write_text(ONE_RANK_FAILS)
    status, events, stderr = train(
        dataset, tmp_path / "job", "--epochs", 1, "--processes", 2, "--batch-size", 33, network=network
    )
    assert status == 1
    [error] = events_of(events, "error")
    line = ONE_RANK_FAILS.splitlines().index(FAILING_LINE) + 1
    assert error["message"] == f"ValueError: a batch of 16 (network.py, line {line})"
    assert error["user_line"] == line
    assert "rank 1 of 2 failed first; the end of its log:" in stderr
