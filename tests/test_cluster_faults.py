"""Bad input and faults of the Ray backend, against real parts: Ray's test cluster on this machine and real
servers (``python -m digits``) on it.

The module's cluster: a head that runs nothing and serves Ray Client, ``cpu-node`` (one CPU), ``gpu-node``
(one CPU, one fake GPU) and ``blind-node``, joined with ``ray start`` in a mount namespace of its own where
the folder holding every jobs directory of the module is an empty tmpfs: the path is there, what the server
wrote is not, as on a machine where the shared storage is not mounted. The module's server connects with a
``ray://`` address. Everything is stopped after; no Ray process is left.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from helpers import CREATE_DATASET, CREATE_MODEL, dataset_fields, lenet_fields, poll
from ray_cluster import NODE_ARGS, get_json, post, started_cluster, wait_ended, wait_json
from server import LiveServer, free_port

pytestmark = pytest.mark.slow

ray = pytest.importorskip("ray")

FINISHED = ("Done", "Error", "Aborted")
NODES = ("cpu-node", "gpu-node")
BLIND = "blind-node"
CLIENT_PORT = free_port()


@pytest.fixture(scope="module")
def jobs_root(tmp_path_factory) -> Path:
    """The folder of the module's jobs directories (and servers' logs): what the blind node does not see."""
    return tmp_path_factory.mktemp("faults")


def start_blind_node(cluster, hidden: Path) -> subprocess.Popen:
    """``ray start`` of node ``blind-node`` in a private mount namespace with an empty tmpfs over ``hidden``."""
    command = [
        str(Path(sys.executable).with_name("ray")), "start", "--block", f"--address={cluster.address}",
        f"--node-name={BLIND}", "--num-cpus=1", f"--object-store-memory={NODE_ARGS['object_store_memory']}",
        "--min-worker-port=0", "--max-worker-port=0", f"--dashboard-agent-listen-port={free_port()}",
        "--disable-usage-stats",
    ]  # fmt: skip
    script = f'mount -t tmpfs blind "{hidden}" && exec "$@"'
    log = open(hidden / "blind-node.log", "w")  # noqa: SIM115 - the node writes to it until it is stopped
    node = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *command],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip

    def joined():
        assert node.poll() is None, f"the blind node did not start: see {log.name}"
        return any(n["NodeName"] == BLIND and n["Alive"] for n in cluster.global_state.node_table())

    poll(joined, bool, timeout=60, interval=0.2, what="blind-node to join the cluster")
    return node


def stop_blind_node(node: subprocess.Popen) -> None:
    processes = set(psutil.Process(node.pid).children(recursive=True)) | {psutil.Process(node.pid)}
    os.killpg(node.pid, signal.SIGTERM)
    try:
        node.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(node.pid, signal.SIGKILL)
    wait_ended(processes, "the blind node's Ray processes to end")


def can_unshare_mounts() -> bool:
    try:
        tried = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"], capture_output=True)
    except OSError:  # no unshare (util-linux)
        return False
    return tried.returncode == 0


@pytest.fixture(scope="module")
def cluster(jobs_root):
    """The module's cluster; ``cluster.blind`` says whether blind-node is in it (it needs ``unshare --mount``)."""
    head = {"ray_client_server_port": CLIENT_PORT, "node_name": "head"}
    with started_cluster("tests/test_cluster_faults.py", head=head, cpu_node={"num_cpus": 1, "node_name": NODES[0]},
                         gpu_node={"num_cpus": 1, "num_gpus": 1, "node_name": NODES[1]}) as cluster:  # fmt: skip
        blind = start_blind_node(cluster, jobs_root) if can_unshare_mounts() else None
        cluster.blind = blind is not None
        try:
            yield cluster
        finally:
            if blind:
                stop_blind_node(blind)


def live_server(jobs_dir: Path, address: str) -> LiveServer:
    jobs_dir.mkdir()
    live = LiveServer(jobs_dir, env={"DIGITS_CLUSTER": address}).start(timeout=60)
    live.http = live.session()
    return live


@pytest.fixture(scope="module")
def server(cluster, jobs_root):
    """The module's server, connected with Ray Client (``ray://``)."""
    live = live_server(jobs_root / "jobs", f"ray://127.0.0.1:{CLIENT_PORT}")
    yield live
    live.stop()


@pytest.fixture(scope="module")
def dataset(server, digits_folder) -> str:
    job_id = post(server, CREATE_DATASET, dataset_fields(digits_folder))["id"]
    done = wait_json(server, f"/datasets/{job_id}.json", lambda d: d["status"] in FINISHED, timeout=180)
    assert done["status"] == "Done", done.get("error")
    return job_id


def cluster_problem(server) -> str | None:
    return get_json(server, "/index.json")["cluster"]["problem"]


def waiting_for(server, job_id: str) -> str | None:
    return get_json(server, f"/datasets/{job_id}.json")["tasks"][0]["waiting_for"]


def shown_while_serving(live: LiveServer, words: str, digits_folder: Path, timeout: float = 30) -> str:
    """Wait until the home page says ``words`` about the cluster; check that a dataset posted then is accepted
    and waits saying the same, and that the server serves the other pages. Returns the problem shown."""
    problem = poll(lambda: cluster_problem(live), lambda p: p and words in p, timeout=timeout)
    home = live.http.get(live.url + "/")
    assert home.ok and 'id="cluster-panel"' in home.text and words in home.text
    job_id = post(live, CREATE_DATASET, dataset_fields(digits_folder))["id"]
    waiting = poll(lambda: waiting_for(live, job_id), lambda w: w and words in w)
    assert waiting == f"waiting: {cluster_problem(live)}"
    assert get_json(live, f"/datasets/{job_id}.json")["status"] == "Waiting"
    assert live.http.get(live.url + "/models/images/classification/new").ok
    return problem


@pytest.mark.parametrize("form", ["{}", "ray://{}"])
def test_an_address_where_nothing_answers_is_shown_and_the_server_keeps_serving(form, tmp_path, digits_folder):
    port = free_port()  # nothing listens there
    address = form.format(f"127.0.0.1:{port}")
    live = live_server(tmp_path / "jobs", address)
    try:
        problem = shown_while_serving(live, "nothing answers", digits_folder)
        # What to fix: start Ray's head at that port (its own flag for Ray Client), or correct the address.
        started = f"--ray-client-server-port={port}" if form.startswith("ray://") else f"--port={port}"
        assert f"nothing answers at the cluster address {address} (Connection refused)" in problem
        assert f"ray start --head {started}" in problem and "DIGITS_CLUSTER" in problem
    finally:
        live.stop()


def test_an_address_where_something_else_listens_is_shown_after_a_while(tmp_path, digits_folder):
    # ray.init waits for ever there (it reads no Ray answer); the server says what to check meanwhile.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        address = f"127.0.0.1:{listener.getsockname()[1]}"
        live = live_server(tmp_path / "jobs", address)
        try:
            problem = shown_while_serving(live, "no Ray answers", digits_folder, timeout=60)
            assert problem.startswith(f"no Ray answers at the cluster address {address} after 15 s")
            assert "the address Ray's head printed at `ray start --head`" in problem
        finally:
            live.stop()


CLUSTER_METADATA = (b"CLUSTER_METADATA", b"cluster")  # where Ray keeps the versions the cluster was started with


def test_a_ray_version_mismatch_is_shown_with_what_to_install_then_retried(cluster, jobs_root, digits_folder):
    # The head records its Ray and Python versions in the GCS when it starts; every process that joins compares
    # its own with that record. Recording another Ray version is what a head started with that Ray does: the
    # server's own check then meets a real mismatch (a second Ray cannot be installed for one test).
    from ray._raylet import GcsClient

    gcs = GcsClient(address=cluster.address)
    key, namespace = CLUSTER_METADATA
    recorded = gcs.internal_kv_get(key, namespace=namespace)
    other_ray = json.dumps({**json.loads(recorded), "ray_version": "2.0.0"}).encode()
    live = None
    try:
        try:
            gcs.internal_kv_put(key, other_ray, overwrite=True, namespace=namespace)
            live = live_server(jobs_root / "mismatch-jobs", cluster.address)
            problem = poll(lambda: cluster_problem(live), lambda p: p and "version mismatch" in p, timeout=60)
            python = ".".join(map(str, sys.version_info[:3]))
            assert f"the cluster {cluster.address} runs Ray 2.0.0 on Python {python}" in problem
            assert f"this server Ray {ray.__version__} on Python {python}" in problem
            assert "pip install ray==2.0.0" in problem
            job_id = post(live, CREATE_DATASET, dataset_fields(digits_folder))["id"]
            assert poll(lambda: waiting_for(live, job_id), lambda w: w and "version mismatch" in w)
        finally:
            gcs.internal_kv_put(key, recorded, overwrite=True, namespace=namespace)
        # Same versions again: the server's next try connects and the waiting dataset is built.
        done = wait_json(live, f"/datasets/{job_id}.json", lambda d: d["status"] in FINISHED, timeout=120)
        assert done["status"] == "Done", done.get("error")
        assert cluster_problem(live) is None
    finally:
        if live:
            live.stop()


def test_a_node_that_cannot_see_the_jobs_directory_is_named_and_gets_no_tasks(server, cluster, jobs_root):
    if not cluster.blind:
        pytest.skip("blind-node needs a mount namespace of its own (unshare --mount), which this machine refuses")
    # The server checks each node as it connects (and each that joins later), before it places anything there.
    described = poll(lambda: get_json(server, "/index.json")["cluster"], lambda c: len(c["nodes"]) == 4, timeout=60)
    nodes = {n["name"]: n for n in described["nodes"]}
    assert set(nodes) == {"head", *NODES, BLIND}
    problem = nodes[BLIND]["problem"]
    assert problem.startswith(f"node {BLIND} does not see the jobs directory {server.jobs_dir}")
    assert "gets no tasks: mount the jobs directory on it at the same path" in problem
    assert all(nodes[name]["problem"] is None for name in ("head", *NODES))
    assert f"node {BLIND} does not see the jobs directory" in (jobs_root / f"server-{server.port}.log").read_text()
    home = server.http.get(server.url + "/")
    assert f"node {BLIND} does not see the jobs directory" in home.text


def node_of(server, kind: str, job_id: str) -> str | None:
    return next(j["node"] for j in get_json(server, "/index.json")[kind] if j["id"] == job_id)


def test_over_ray_client_a_model_trains_to_done_on_a_node_the_pages_name(server, cluster, dataset):
    # The home page names the nodes a dataset's tasks ran on, its page each task's.
    built = get_json(server, f"/datasets/{dataset}.json")
    ran_on = {task["assigned"]["node_name"] for task in built["tasks"]}
    assert ran_on <= set(NODES)
    assert set(node_of(server, "datasets", dataset).split(", ")) == ran_on
    # More GPUs than any node has: refused at submit, with the largest node's count.
    refused = server.http.post(server.url + CREATE_MODEL, data=lenet_fields(dataset, select_gpu_count="2"))
    assert refused.status_code == 400
    errors = refused.json()["errors"]["select_gpu_count"]
    assert errors == ["2 GPUs were asked for but the largest node of the cluster has 1."]
    job_id = post(server, CREATE_MODEL, lenet_fields(dataset, train_epochs="3"))["id"]
    wait_json(server, f"/models/{job_id}.json", lambda d: d["status"] == "Running")
    assert node_of(server, "models", job_id) == "gpu-node"
    # A second model asking for the one GPU waits, saying what it needs and what each node has free.
    second = post(server, CREATE_MODEL, lenet_fields(dataset, model_name="second"))["id"]
    waiting = wait_json(server, f"/models/{second}.json", lambda d: d["tasks"][0]["waiting_for"])["tasks"][0]
    assert waiting["waiting_for"].startswith("waiting for a GPU on a cluster node (")
    assert "gpu-node: 0/1 GPUs" in waiting["waiting_for"]
    if cluster.blind:
        assert f"{BLIND}: none, it does not see the jobs directory" in waiting["waiting_for"]
    row = next(j for j in get_json(server, "/index.json")["models"] if j["id"] == second)
    assert row["waiting_for"] == waiting["waiting_for"]
    gpu_node = next(n for n in get_json(server, "/index.json")["cluster"]["nodes"] if n["name"] == "gpu-node")
    assert (gpu_node["gpus"], gpu_node["gpus_busy"]) == (1, 1)
    done = wait_json(server, f"/models/{job_id}.json", lambda d: d["status"] in FINISHED, timeout=240)
    assert done["status"] == "Done", done.get("error")
    assert done["metrics"], "the metrics came back from the node"
    assert done["tasks"][0]["assigned"]["node_name"] == "gpu-node" == node_of(server, "models", job_id)
    server.http.post(f"{server.url}/models/{second}/abort")
    wait_json(server, f"/models/{second}.json", lambda d: d["status"] in FINISHED)


def exit_file(server, job: dict) -> Path:
    return server.jobs_dir / job["id"] / f"{job['tasks'][0]['id']}.exit.json"


def test_tasks_that_end_while_the_server_is_down_show_their_true_final_state(server, dataset):
    # One that trains to its end, one whose tool is killed on its node: both while no server watches.
    short = post(server, CREATE_MODEL, lenet_fields(dataset, train_epochs="3", model_name="short"))["id"]
    killed = post(server, CREATE_MODEL, lenet_fields(dataset, train_epochs="200", select_gpu_count="0",
                                                     model_name="killed"))["id"]  # fmt: skip
    jobs = {
        job_id: wait_json(server, f"/models/{job_id}.json",
                          lambda d: d["status"] == "Running" and d["tasks"][0]["assigned"].get("pid"), timeout=120)
        for job_id in (short, killed)
    }  # fmt: skip
    server.kill()
    assert not any(exit_file(server, job).exists() for job in jobs.values()), "both still ran when the server died"
    os.kill(jobs[killed]["tasks"][0]["assigned"]["pid"], signal.SIGKILL)
    for job in jobs.values():
        poll(lambda job=job: exit_file(server, job).exists(), bool, timeout=180, interval=0.2,
             what=f"{job['name']} to end")  # fmt: skip
    server.start(timeout=60)
    server.http = server.session()
    trained = wait_json(server, f"/models/{short}.json", lambda d: d["status"] in FINISHED, timeout=60)
    assert trained["status"] == "Done", trained.get("error")
    assert trained["progress"] == 1.0
    assert sorted({m["epoch"] for m in trained["metrics"] if "val" in m}) == [1, 2, 3]
    ended = wait_json(server, f"/models/{killed}.json", lambda d: d["status"] in FINISHED, timeout=60)
    assert ended["status"] == "Error"
    assert ended["error"]["message"].startswith("the task was killed by SIGKILL")
    assert not trained["interrupted"] and not ended["interrupted"]
