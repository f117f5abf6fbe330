"""A user sees where work runs on a Ray cluster: the home page's Cluster panel (each node and what it has free)
and Node column, what a waiting model needs, and the node on the dataset's and the model's pages."""

from __future__ import annotations

import pytest
from helpers import CREATE_DATASET, CREATE_MODEL, FINISHED, dataset_fields, lenet_fields
from ray_cluster import post, started_cluster, wait_json
from server import LiveServer
from ui import login, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

pytest.importorskip("ray")


@pytest.fixture(scope="module")
def on_cluster(tmp_path_factory, digits_folder):
    """A server on a cluster of a head that runs nothing and ``node-a`` (one CPU slot), with a dataset built."""
    with started_cluster("tests/browser/test_cluster_ui.py", head={"node_name": "head"},
                         node_a={"num_cpus": 1, "node_name": "node-a"}) as cluster:  # fmt: skip
        jobs = tmp_path_factory.mktemp("cluster-ui") / "jobs"
        jobs.mkdir()
        server = LiveServer(jobs, env={"DIGITS_CLUSTER": cluster.address}).start(timeout=60)
        server.http = server.session()
        try:
            dataset = post(server, CREATE_DATASET, dataset_fields(digits_folder))["id"]
            done = wait_json(server, f"/datasets/{dataset}.json", lambda d: d["status"] in FINISHED, timeout=180)
            assert done["status"] == "Done", done.get("error")
            yield server, cluster, dataset
        finally:
            server.stop()


@pytest.fixture
def user(browser, on_cluster):
    context = browser.new_context(viewport={"width": 1400, "height": 900}, base_url=on_cluster[0].url + "/")
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page)
    yield page
    assert not errors
    context.close()


def node_row(page, name: str):
    return page.locator("#cluster-nodes tr.cluster-node", has=page.locator(".node-name", has_text=name))


def test_the_pages_show_the_nodes_what_they_have_free_and_what_a_waiting_model_needs(user, on_cluster):
    server, cluster, dataset = on_cluster
    user.goto("")
    assert user.locator("#cluster-address").inner_text() == cluster.address
    assert user.locator("#cluster-problem").is_hidden()
    assert node_row(user, "node-a").locator(".node-cpus").inner_text() == "1 / 1"
    assert node_row(user, "head").locator(".node-cpus").inner_text() == "0 / 0"
    assert user.locator(f"#job-{dataset} .job-node").inner_text() == "node-a"

    user.goto(f"datasets/{dataset}")
    nodes = user.locator(".task .task-node").all_inner_texts()
    assert nodes and set(nodes) == {"on node node-a"}

    # One model takes node-a's one slot; a second waits for it, and the home page says so.
    ids = [post(server, CREATE_MODEL, lenet_fields(dataset, train_epochs="100", model_name=f"m{i}"))["id"]
           for i in range(2)]  # fmt: skip
    wait_json(server, f"/models/{ids[0]}.json", lambda d: d["status"] == "Running")
    try:
        user.goto("")
        user.click("#models-tab")
        waiting = user.locator(f"#job-{ids[1]} .job-waiting")
        waiting.wait_for(state="visible")
        assert waiting.inner_text().startswith("Waiting for a CPU slot on a cluster node (")
        assert "node-a: 0/0 GPUs, 0/1 CPU slots free" in waiting.inner_text()
        assert user.locator(f"#job-{ids[0]} .job-node").inner_text() == "node-a"
        assert node_row(user, "node-a").locator(".node-cpus").inner_text() == "0 / 1"
        # The tab's pane fades in: a picture taken before the fade has ended shows no table.
        user.wait_for_function("getComputedStyle(document.getElementById('models-pane')).opacity === '1'")
        screenshot(user, "cluster-home")

        user.goto(f"models/{ids[0]}")
        assert user.locator("#task-node").inner_text() == "on node node-a"
        user.goto(f"models/{ids[1]}")
        assert user.locator("#task-node").is_hidden()
        assert "0/1 CPU slots free" in user.locator("#task-waiting").inner_text()
    finally:
        for job_id in reversed(ids):
            server.http.post(f"{server.url}/models/{job_id}/abort")
        for job_id in ids:
            wait_json(server, f"/models/{job_id}.json", lambda d: d["status"] in FINISHED)
