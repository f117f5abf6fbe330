"""TensorBoard on demand (started, proxied, shared, limited, stopped), Visualize, and the Compare page's data."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
from helpers import CREATE_MODEL, lenet_fields, logged_in_client, make_dataset, post_form, wait_done
from seed_networks import AUTOENCODER

from digits.config import Config
from digits.models.image_classification import standard_network_source
from digits.tensorboard import BUSY_SECONDS, TensorBoardError, TensorBoardManager, free_port, key_of
from digits.visualize import NetworkBuildError, visualize_network
from digits.web.services import services_of

pytestmark = pytest.mark.slow

LENET = standard_network_source("lenet")
BROKEN_LENET = LENET.replace("x = x * 0.0125", "x = x * 0.0125 + undefined_name")
LENET_LAYERS = {  # name: (output shape, parameters)
    "conv1": ([None, 24, 24, 20], 5 * 5 * 1 * 20 + 20),
    "pool1": ([None, 12, 12, 20], 0),
    "conv2": ([None, 8, 8, 50], 5 * 5 * 20 * 50 + 50),
    "pool2": ([None, 4, 4, 50], 0),
    "fc1": ([None, 500], 800 * 500 + 500),
    "do1": ([None, 500], 0),
    "fc2": ([None, 10], 500 * 10 + 10),
}


def tensorboard_processes(marker: str) -> list[psutil.Process]:
    """TensorBoard processes (started by DIGITS or by hand) whose command line mentions ``marker``."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        command = " ".join(process.info["cmdline"] or [])
        if "tensorboard" in command and marker in command:
            found.append(process)
    return found


@pytest.fixture(scope="module")
def jobs_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tensorboard") / "jobs"


@pytest.fixture(scope="module")
def app(make_module_app, jobs_dir):
    return make_module_app(jobs_dir)


@pytest.fixture(scope="module")
def client(app):
    return logged_in_client(app)


@pytest.fixture(scope="module")
def dataset(client, digits_folder) -> str:
    return make_dataset(client, digits_folder, folder_pct_val="25")


@pytest.fixture(scope="module")
def models(client, dataset) -> list[str]:
    """Two LeNets trained for one epoch each."""
    ids = []
    for name in ("lenet A", "lenet B"):
        ids.append(post_form(client, CREATE_MODEL, lenet_fields(dataset, model_name=name, batch_size="16"))["id"])
    for job_id in ids:
        wait_done(client, job_id, timeout=180)
    return ids


# -- Visualize ---------------------------------------------------------------------------------------
def test_visualize_describes_the_seed_lenet(tmp_path):
    network = tmp_path / "network.py"
    network.write_text(LENET)
    command = [sys.executable, "-m", "digits.tools.tensorflow.visualize", "--network", str(network),
               "--shape", "28,28,1", "--nclasses", "10", "--tb-dir", str(tmp_path / "tb")]  # fmt: skip
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"visualize took {time.monotonic() - started:.1f} s")
    layers = {layer["name"]: layer for layer in result["layers"]}
    names = [layer["name"] for layer in result["layers"]]
    assert [n for n in names if n in LENET_LAYERS] == list(LENET_LAYERS)  # in the order the graph builds them
    assert names[0] == "input" and names[-1] == "loss"
    for name, (shape, params) in LENET_LAYERS.items():
        assert (layers[name]["output_shape"], layers[name]["params"]) == (shape, params), name
    assert layers["conv1"]["type"] == "Conv2D + Relu" and layers["pool1"]["type"] == "MaxPool"
    assert layers["fc2"]["type"] == "FullyConnected" and layers["do1"]["type"] == "Dropout"
    assert result["total_params"] == sum(p for _, p in LENET_LAYERS.values()) == 431_080
    assert result["metrics"] == ["accuracy"]
    assert list((tmp_path / "tb").glob("events.out.tfevents.*")), "the graph was not written for TensorBoard"


def test_visualize_errors_name_the_users_line():
    with pytest.raises(NetworkBuildError) as broken:
        visualize_network(BROKEN_LENET, [28, 28, 1], 10)
    assert str(broken.value) == "NameError: name 'undefined_name' is not defined (network.py, line 12)"
    assert broken.value.line == 12 and "undefined_name" in broken.value.source_line

    with pytest.raises(NetworkBuildError) as seed:  # the seed's auto-encoder, typo included
        visualize_network(AUTOENCODER, [28, 28, 1], 10)
    assert seed.value.line == 13 and "_x" in seed.value.source_line

    with pytest.raises(NetworkBuildError, match="must define class UserModel"):
        visualize_network("class Model(Tower):\n    pass\n", [28, 28, 1], 10)

    never = LENET.replace("x = x * 0.0125", "x = x * 0.0125\n        while True: pass")
    started = time.monotonic()
    with pytest.raises(NetworkBuildError, match="building the network did not finish in 12 s"):
        visualize_network(never, [28, 28, 1], 10, timeout=12)
    assert time.monotonic() - started < 20
    assert not [p for p in psutil.Process().children(recursive=True) if "visualize" in " ".join(p.cmdline())]


def test_visualize_route_and_its_json_twin(client, dataset, monkeypatch):
    answer = client.post("/models/visualize-network.json", data={"custom_network": LENET, "dataset": dataset})
    assert answer.status_code == 200, answer.get_json()
    result = answer.get_json()
    assert result["input_shape"] == [28, 28, 1] and result["nclasses"] == 10
    assert {layer["name"] for layer in result["layers"]} >= set(LENET_LAYERS)

    answer = client.post("/models/visualize-network", data={"custom_network": BROKEN_LENET, "input_shape": "28,28,1"})
    assert answer.status_code == 400
    error = answer.get_json()
    assert error["errors"] == error["message"] and "undefined_name" in error["message"]
    assert error["user_line"] == 12 and "undefined_name" in error["user_source_line"]

    # What is built for which input: checked without building.
    asked = []
    monkeypatch.setattr(
        "digits.models.routes.visualize_network",
        lambda source, shape, n, **limits: asked.append((shape, n)) or {"layers": []},
    )

    def post(**fields):
        return client.post("/models/visualize-network.json", data={"custom_network": LENET, **fields})

    assert post(input_shape="32x32x3").status_code == 200
    assert post(dataset=dataset, crop_size="24").status_code == 200
    assert post(input_shape="64,64,3", nclasses="2").status_code == 200
    assert asked == [([32, 32, 3], 10), ([24, 24, 1], 10), ([64, 64, 3], 2)]
    bad = post(input_shape="28,28")
    assert bad.status_code == 400 and "three positive integers" in bad.get_json()["errors"]["input_shape"][0]
    assert post(custom_network=" ").status_code == 400
    assert post(dataset="nope").status_code == 404


# -- TensorBoard through the app --------------------------------------------------------------------
def test_tensorboard_through_the_app(app, client, models, jobs_dir):
    one = client.post(f"/tensorboard.json?job_id={models[0]}")
    assert one.status_code == 200, one.get_json()
    opened = one.get_json()
    assert opened == {"key": key_of([models[0]]), "url": f"/tensorboard/{opened['key']}/", "runs": ["lenet A"]}
    page = client.get(opened["url"])
    assert page.status_code == 200 and b"<tb-webapp>" in page.data, page.data[:300]
    assert client.get(opened["url"] + "data/runs").get_json() == ["lenet A/."]
    tags = client.get(opened["url"] + "data/plugin/scalars/tags").get_json()
    assert {"train/loss", "train/accuracy", "val/loss", "val/accuracy"} <= set(tags["lenet A/."])
    # TensorBoard's page POSTs its queries with its own XSRF header and no DIGITS token: they must pass.
    posted = client.post(
        opened["url"] + "data/plugin/scalars/scalars_multirun",
        data={"tag": "train/loss", "runs": "lenet A/."},
        headers={"Origin": "http://localhost", "X-XSRF-Protected": "1"},
    )
    assert posted.status_code == 200 and posted.get_json()["lenet A/."]

    server = services_of(app).tensorboard.find(opened["key"])
    assert client.post(f"/tensorboard?job_id={models[0]}").headers["Location"] == opened["url"] + "#scalars"
    assert services_of(app).tensorboard.find(opened["key"]).process.pid == server.process.pid  # reused

    # TensorBoard dying: the next request starts it again.
    os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait()
    assert client.get(opened["url"] + "data/runs").get_json() == ["lenet A/."]
    assert services_of(app).tensorboard.find(opened["key"]).process.pid != server.process.pid

    # Many users opening the comparison of both models at once: one server for all of them.
    compare = f"/tensorboard.json?job_id={models[1]}&job_id={models[0]}"
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: client.post(compare), range(6)))
    assert {a.status_code for a in answers} == {200} and len({a.get_json()["url"] for a in answers}) == 1
    both = answers[0].get_json()
    assert both["key"] == key_of(models) and both["runs"] == ["lenet A", "lenet B"]
    assert sorted(client.get(both["url"] + "data/runs").get_json()) == ["lenet A/.", "lenet B/."]
    assert len(tensorboard_processes(str(jobs_dir))) == 2


def test_tensorboard_refusals(app, client, models):
    anonymous = app.test_client()
    assert anonymous.post(f"/tensorboard?job_id={models[0]}").status_code == 302  # to the login page
    assert anonymous.get(f"/tensorboard/{key_of([models[0]])}/data/runs").status_code == 401
    assert client.post("/tensorboard.json").status_code == 400
    assert client.post("/tensorboard.json?job_id=nope").status_code == 404
    assert client.get("/tensorboard/0123456789ab/data/runs").status_code == 404  # never opened
    tb = Path(services_of(app).store.get(models[1]).directory) / "tb"
    tb.rename(tb.with_name("tb-away"))
    try:
        answer = client.post(f"/tensorboard.json?job_id={models[1]}")
        assert answer.status_code == 400
        assert answer.get_json()["errors"] == "lenet B: no TensorBoard summaries yet: training has not started"
    finally:
        tb.with_name("tb-away").rename(tb)


def test_compare_data(client, models):
    answer = client.get(f"/models/compare.json?job_id={models[0]}&job_id={models[1]}")
    data = answer.get_json()
    assert [m["name"] for m in data["models"]] == ["lenet A", "lenet B"]
    assert {"train/loss", "train/accuracy", "val/loss", "val/accuracy", "lr"} <= set(data["metrics"])
    for model in data["models"]:
        times = [p["time"] for p in model["points"]]
        assert times and all(t is not None and t >= 0 for t in times) and times == sorted(times)
        assert model["points"][-1]["epoch"] == 1.0
    page = client.get(f"/models/compare?job_id={models[0]}&job_id={models[1]}")
    assert page.status_code == 200 and b'id="compare-chart"' in page.data
    assert client.get("/models/compare.json").status_code == 400


def test_shutdown_leaves_no_tensorboard(make_app, jobs_dir, models):
    app = make_app(jobs_dir)
    client = logged_in_client(app)
    before = {p.pid for p in tensorboard_processes(str(jobs_dir))}
    assert client.post(f"/tensorboard.json?job_id={models[0]}").status_code == 200
    mine = [p for p in tensorboard_processes(str(jobs_dir)) if p.pid not in before]
    assert len(mine) == 1
    services_of(app).shutdown()
    _, alive = psutil.wait_procs(mine, timeout=10)
    assert not alive


# -- the manager alone ----------------------------------------------------------------------------
def test_manager_limit_idle_stop_and_shutdown(models, jobs_dir, tmp_path):
    runs = {name: str(jobs_dir / job_id / "tb") for name, job_id in zip(("a", "b"), models, strict=True)}
    manager = TensorBoardManager(max_servers=1, idle_seconds=3, log_dir=tmp_path)
    try:
        first = manager.open("aaaaaaaaaaaa", {"a": runs["a"]})
        with pytest.raises(TensorBoardError, match="1 TensorBoards are open, the most this server runs at once"):
            manager.open("bbbbbbbbbbbb", {"b": runs["b"]})  # the first is in use
        first.last_used -= BUSY_SECONDS + 1  # ... and now it is not: it makes room
        second = manager.open("bbbbbbbbbbbb", {"b": runs["b"]})
        first.process.wait(timeout=10)
        assert [s.key for s in manager.servers()] == ["bbbbbbbbbbbb"]
        # Unused for idle_seconds: stopped.
        second.process.wait(timeout=10)
        deadline = time.monotonic() + 5
        while manager.servers() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert manager.servers() == []
        # Opened again (a tab still showing it): started again.
        third = manager.find("bbbbbbbbbbbb")
        assert third is not None and third.alive() and third.process.pid != second.process.pid
    finally:
        manager.shutdown()
    assert not third.alive()
    assert manager.find("cccccccccccc") is None


def test_manager_reports_a_tensorboard_that_does_not_start(tmp_path):
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'tensorboard: no such flag --nonsense' >&2\nexit 2\n")
    fake.chmod(0o755)
    manager = TensorBoardManager(log_dir=tmp_path, python=str(fake))
    with pytest.raises(TensorBoardError) as failed:
        manager.open("aaaaaaaaaaaa", {"a": str(tmp_path)})
    assert "stopped (exit status 2) while starting" in str(failed.value)
    assert "no such flag --nonsense" in str(failed.value)
    assert manager.servers() == []
    manager.shutdown()
    with pytest.raises(TensorBoardError, match="shutting down"):
        manager.open("aaaaaaaaaaaa", {"a": str(tmp_path)})


def test_key_is_the_same_for_the_same_jobs():
    assert key_of(["b", "a"]) == key_of(["a", "b", "a"]) != key_of(["a"])
    assert len(key_of(["a"])) == 12


def test_config_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DIGITS_TENSORBOARD_MAX", "2")
    monkeypatch.setenv("DIGITS_TENSORBOARD_IDLE", "30")
    config = Config.from_env(jobs_dir=tmp_path)
    assert (config.tensorboard_max, config.tensorboard_idle) == (2, 30)
    assert (Config().tensorboard_max, Config().tensorboard_idle) == (4, 600)


def test_tensorboard_by_hand_still_works(models, jobs_dir):
    """The seed's ``tensorboard --logdir <job_dir>/tb/`` on a job the app trained."""
    tensorboard = Path(sys.executable).with_name("tensorboard")
    port = free_port()
    log = jobs_dir.parent / "by-hand.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [str(tensorboard), "--logdir", f"{jobs_dir / models[0]}/tb/", "--port", str(port), "--host", "127.0.0.1"],
            stdout=out, stderr=out, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/data/runs", timeout=2) as answer:
                    assert answer.read() == b'["."]'
                    break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
