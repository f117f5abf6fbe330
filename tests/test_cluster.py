"""Tasks on a Ray cluster: Ray's own test cluster on this machine (a head that runs nothing, a CPU node and a
node with one fake GPU), a real server (``python -m digits``) with ``DIGITS_CLUSTER`` set to it.

One cluster and one server serve the whole module; the last test takes a node away. No Ray process is left.
"""

from __future__ import annotations

import time

import psutil
import pytest
from helpers import CREATE_DATASET, CREATE_MODEL, dataset_fields, lenet_fields, poll
from ray_cluster import get_json, post, started_cluster, wait_json
from server import LiveServer

pytestmark = pytest.mark.slow

pytest.importorskip("ray")


@pytest.fixture(scope="module")
def cluster():
    with started_cluster("tests/test_cluster.py", cpu_node={"num_cpus": 1},
                         gpu_node={"num_cpus": 1, "num_gpus": 1}) as cluster:  # fmt: skip
        yield cluster


@pytest.fixture(scope="module")
def server(cluster, tmp_path_factory):
    jobs_dir = tmp_path_factory.mktemp("cluster") / "jobs"
    jobs_dir.mkdir()
    live = LiveServer(jobs_dir, env={"DIGITS_CLUSTER": cluster.address}).start(timeout=60)
    live.http = live.session()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def dataset(server, digits_folder):
    job_id = post(server, CREATE_DATASET, dataset_fields(digits_folder))["id"]
    done = wait_json(server, f"/datasets/{job_id}.json", lambda d: d["status"] in ("Done", "Error"), timeout=180)
    assert done["status"] == "Done", done.get("error")
    return job_id, done


def node_ids(cluster) -> dict[str, str]:
    return {cluster.cpu_node.node_id: "cpu", cluster.gpu_node.node_id: "gpu"}


def test_dataset_and_model_train_to_done_live_on_the_gpu_node(server, cluster, dataset):
    _, built = dataset
    assert built["tasks"][0]["assigned"]["node"] in node_ids(cluster)
    job_id = post(server, CREATE_MODEL, lenet_fields(dataset[0], train_epochs="3"))["id"]
    seen = set()

    def progress():
        data = get_json(server, f"/models/{job_id}.json")
        seen.add(round(data["progress"], 2))
        return data

    done = poll(progress, lambda d: d["status"] in ("Done", "Error", "Aborted"), timeout=240, interval=0.1)
    assert done["status"] == "Done", done.get("error")
    assert any(0 < p < 1 for p in seen), f"no progress seen while it ran: {seen}"
    assert done["metrics"], "the metrics came back from the node"
    # The model asked for the one GPU the cluster has: Ray placed it on that node.
    assert node_ids(cluster)[done["tasks"][0]["assigned"]["node"]] == "gpu"


def test_more_gpus_than_any_node_has_is_refused_at_submit(server, dataset):
    answer = server.http.post(server.url + CREATE_MODEL, data=lenet_fields(dataset[0], select_gpu_count="2"))
    assert answer.status_code == 400
    assert "the largest node of the cluster has 1" in answer.text


def test_a_sweep_of_four_models_spreads_over_both_nodes(server, cluster, dataset):
    answer = post(server, CREATE_MODEL, lenet_fields(dataset[0], learning_rate="0.01,0.02,0.03,0.04",
                                                      select_gpu_count="0"))  # fmt: skip
    ids = [job["id"] for job in answer["jobs"]]
    assert len(ids) == 4
    nodes = set()
    for job_id in ids:
        done = wait_json(server, f"/models/{job_id}.json", lambda d: d["status"] in ("Done", "Error"), timeout=300)
        assert done["status"] == "Done", done.get("error")
        nodes.add(done["tasks"][0]["assigned"]["node"])
    assert nodes == set(node_ids(cluster))


def running_with_pid(server, job_id: str, timeout: float = 120.0) -> dict:
    return wait_json(server, f"/models/{job_id}.json",
                     lambda d: d["status"] == "Running" and d["tasks"][0]["assigned"].get("pid") and d["progress"] > 0,
                     timeout=timeout)  # fmt: skip


def test_abort_stops_the_process_on_its_node(server, dataset):
    job_id = post(server, CREATE_MODEL, lenet_fields(dataset[0], train_epochs="200"))["id"]
    pid = running_with_pid(server, job_id)["tasks"][0]["assigned"]["pid"]
    assert psutil.pid_exists(pid)
    server.http.post(f"{server.url}/models/{job_id}/abort")
    done = wait_json(server, f"/models/{job_id}.json", lambda d: d["status"] in ("Aborted", "Error", "Done"))
    assert done["status"] == "Aborted"
    poll(lambda: psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE,
         lambda alive: not alive, timeout=15, what=f"tool {pid} to end")  # fmt: skip


def tools_in(directory) -> set[int]:
    """The processes (other than zombies) working in ``directory``: a task's tool runs in its job's."""
    found = set()
    for process in psutil.process_iter(["pid", "cwd", "status"]):
        if process.info["cwd"] == str(directory) and process.info["status"] != psutil.STATUS_ZOMBIE:
            found.add(process.info["pid"])
    return found


def test_abort_at_once_after_submit_stops_the_tool_while_it_starts(server, dataset):
    # The abort reaches the runner while it may still be starting the tool: it must stop that tool all the same.
    job_id = post(server, CREATE_MODEL, lenet_fields(dataset[0], train_epochs="200", select_gpu_count="0"))["id"]
    server.http.post(f"{server.url}/models/{job_id}/abort")
    done = wait_json(server, f"/models/{job_id}.json", lambda d: d["status"] in ("Aborted", "Error", "Done"))
    assert done["status"] == "Aborted"
    poll(lambda: tools_in(server.jobs_dir / job_id), lambda pids: not pids, timeout=15, what="the tool to end")
    # The node's runner is ready for the next task: a model trains to Done.
    job_id = post(server, CREATE_MODEL, lenet_fields(dataset[0], train_epochs="1", select_gpu_count="0"))["id"]
    done = wait_json(server, f"/models/{job_id}.json", lambda d: d["status"] in ("Aborted", "Error", "Done"))
    assert done["status"] == "Done", done.get("error")


def test_server_sigkilled_mid_training_then_restarted_finds_the_task(server, dataset):
    # Long enough to outlast a restart on a quiet machine (12 epochs took 8 s there, the restart about as long).
    job_id = post(server, CREATE_MODEL, lenet_fields(dataset[0], train_epochs="40"))["id"]
    before = running_with_pid(server, job_id)
    pid = before["tasks"][0]["assigned"]["pid"]
    server.kill()
    time.sleep(2)
    assert psutil.pid_exists(pid), "the training went on without the server"
    server.start(timeout=60)
    server.http = server.session()
    again = wait_json(server, f"/models/{job_id}.json", lambda d: d["status"] == "Running" or d["status"] == "Done")
    assert again["status"] == "Running", "the restarted server found the task still running"
    assert again["progress"] >= before["progress"]
    live = wait_json(server, f"/models/{job_id}.json",
                     lambda d: d["progress"] > again["progress"] + 0.01 or d["status"] == "Done")  # fmt: skip
    assert live["status"] in ("Running", "Done")
    done = wait_json(server, f"/models/{job_id}.json", lambda d: d["status"] in ("Done", "Error", "Aborted"), 300)
    assert done["status"] == "Done", done.get("error")
    epochs = [m["epoch"] for m in done["metrics"] if "val" in m]
    assert len(epochs) == len(set(epochs)), "no metric was listed twice across the restart"


def test_node_removed_mid_training_interrupts_and_resume_finishes_elsewhere(server, cluster, dataset):
    # Two CPU trainings, one on each node: the one on the CPU node loses its node, the other is aborted so that
    # the resumed one finds room on the node that is left.
    ids = [post(server, CREATE_MODEL, lenet_fields(dataset[0], train_epochs="40", select_gpu_count="0",
                                                   model_name=f"run {i}"))["id"] for i in range(2)]  # fmt: skip
    where = {}
    for job_id in ids:
        data = wait_json(server, f"/models/{job_id}.json", lambda d: d["status"] == "Running" and d["snapshots"],
                         timeout=180)  # fmt: skip
        where[node_ids(cluster)[data["tasks"][0]["assigned"]["node"]]] = job_id
    assert set(where) == {"cpu", "gpu"}
    cluster.remove_node(cluster.cpu_node, allow_graceful=False)
    server.http.post(f"{server.url}/models/{where['gpu']}/abort")
    job_id = where["cpu"]
    stopped = wait_json(server, f"/models/{job_id}.json", lambda d: d["status"] != "Running", timeout=90)
    assert stopped["status"] == "Aborted" and stopped["interrupted"]
    assert "left the cluster" in stopped["error"]["message"]
    assert stopped["can_resume"]
    assert server.http.post(f"{server.url}/models/{job_id}/resume").ok
    done = wait_json(server, f"/models/{job_id}.json", lambda d: d["status"] in ("Done", "Error", "Aborted"), 300)
    assert done["status"] == "Done", done.get("error")
    assert node_ids(cluster)[done["tasks"][0]["assigned"]["node"]] == "gpu"
