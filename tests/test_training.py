"""Training through the app: DIGITS' REST step 4, the accuracy it reaches, abort and resume."""

from __future__ import annotations

import pytest
from helpers import (
    CREATE_MODEL,
    lenet_fields,
    logged_in_client,
    make_dataset,
    poll,
    post_form,
    wait_done,
    wait_for_status,
)
from sample_images import write_digits_folder
from seed_networks import AUTOENCODER

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def full_digits(tmp_path_factory):
    """All 1,797 of scikit-learn's digits as 28x28 grayscale PNGs."""
    return write_digits_folder(tmp_path_factory.mktemp("all-digits"))


@pytest.fixture(scope="module")
def logged_in(make_module_app):
    """One app for the module's trainings, so that they share the digits dataset."""
    return logged_in_client(make_module_app())


@pytest.fixture(scope="module")
def dataset(logged_in, digits_folder) -> str:
    """The 30 digits per class, 25% for validation."""
    return make_dataset(logged_in, digits_folder, folder_pct_val="25")


def val_accuracy(metrics: list[dict]) -> list[float]:
    return [value for m in metrics for name, value in m.get("val", {}).items() if "accuracy" in name]


def test_rest_step_4_and_accuracy(logged_in, full_digits):
    dataset = make_dataset(logged_in, full_digits, folder_pct_val="25")
    fields = lenet_fields(dataset, train_epochs="30", solver_type="SGD", learning_rate="0.01", lr_policy="step",
                          batch_size="16", random_seed="1")  # fmt: skip
    created = logged_in.post(CREATE_MODEL, data=fields).get_json()
    assert set(created) == {"id", "name", "status"}
    poll(lambda: logged_in.get(f"/models/{created['id']}.json").get_json()["snapshots"], bool, timeout=30,
         interval=0.5, what="a snapshot while training")  # fmt: skip
    status = wait_for_status(logged_in, created["id"], timeout=600)
    model = logged_in.get(f"/models/{created['id']}.json").get_json()
    assert status["status"] == "Done", model["error"]
    assert model["snapshots"][-1] == 30 and len(model["snapshots"]) == 30
    accuracy = val_accuracy(model["metrics"])
    assert len(accuracy) == 30
    assert accuracy[-1] >= 0.975, accuracy
    print(f"validation accuracy after 30 epochs: {accuracy[-1]:.4f}")


def test_abort_then_resume_continues_the_curve(logged_in, dataset):
    fields = lenet_fields(dataset, train_epochs="40", model_name="long", batch_size="8", snapshot_interval="1")
    created = post_form(logged_in, CREATE_MODEL, fields)
    url = f"/models/{created['id']}.json"
    poll(lambda: logged_in.get(url).get_json()["snapshots"], lambda snapshots: len(snapshots) >= 2, timeout=120,
         interval=0.2, what="two snapshots")  # fmt: skip
    logged_in.post(f"/models/{created['id']}/abort")
    aborted = wait_for_status(logged_in, created["id"])
    assert aborted["status"] == "Aborted"
    before = logged_in.get(url).get_json()
    assert before["can_resume"] and before["snapshots"]
    last_epoch = max(m["epoch"] for m in before["metrics"])
    assert logged_in.post(f"/models/{created['id']}/resume").status_code == 200
    after = poll(
        lambda: logged_in.get(url).get_json(),
        lambda model: max(m["epoch"] for m in model["metrics"]) > last_epoch + 1 or model["status"] == "Error",
        timeout=120, interval=0.2, what=f"epochs after {last_epoch + 1}",
    )  # fmt: skip
    assert max(m["epoch"] for m in after["metrics"]) > last_epoch + 1, after["error"]
    resumed_from = before["snapshots"][-1]
    new_points = after["metrics"][len(before["metrics"]) :]
    assert new_points and min(m["epoch"] for m in new_points) > resumed_from  # it carried on, not restarted
    logged_in.post(f"/models/{created['id']}/abort")
    wait_for_status(logged_in, created["id"])


def test_network_error_names_the_users_line(logged_in, dataset):
    fields = dict(method="custom", custom_network=AUTOENCODER, train_epochs="1", framework="tensorflow",
                  model_name="auto-encoder as printed", dataset=dataset)  # fmt: skip
    created = logged_in.post(CREATE_MODEL, data=fields).get_json()
    status = wait_for_status(logged_in, created["id"], timeout=120)
    assert status["status"] == "Error"
    assert status["error"] == "NameError: name '_x' is not defined (network.py, line 13)"
    error = logged_in.get(f"/models/{created['id']}.json").get_json()["error"]
    assert error["user_line"] == 13 and "tf.reshape(_x" in error["user_source_line"]


def test_start_from_a_previous_model(logged_in, dataset):
    base = lenet_fields(dataset, train_epochs="2", model_name="first", batch_size="16")
    first = post_form(logged_in, CREATE_MODEL, base)
    wait_done(logged_in, first["id"], timeout=120)
    bad = logged_in.post(
        CREATE_MODEL, data=dict(base, method="previous", previous_networks=first["id"], previous_network_snapshot="7")
    )
    assert bad.status_code == 400
    assert bad.get_json()["errors"]["previous_network_snapshot"] == ["first has no snapshot at epoch 7; it has 1, 2."]
    fields = dict(base, method="previous", previous_networks=first["id"], previous_network_snapshot="1",
                  model_name="second", train_epochs="1")  # fmt: skip
    second = post_form(logged_in, CREATE_MODEL, fields)
    wait_done(logged_in, second["id"], timeout=120)
    log = logged_in.get(f"/jobs/{second['id']}/log/train").get_data(as_text=True)
    assert "--weights" in log.splitlines()[0] and "snapshot_1.0.ckpt" in log.splitlines()[0]
    model = logged_in.get(f"/models/{second['id']}.json").get_json()
    assert model["status"] == "Done"


def test_early_stopping_through_the_app(logged_in, dataset):
    fields = lenet_fields(dataset, train_epochs="40", model_name="early", batch_size="16", solver_type="ADAM",
                          learning_rate="0.001", early_stopping_metric="val/accuracy", early_stopping_patience="2",
                          random_seed="1")  # fmt: skip
    bad = logged_in.post(CREATE_MODEL, data=dict(fields, early_stopping_metric="train/loss"))
    assert bad.status_code == 400 and "validation metric" in bad.get_json()["errors"]["early_stopping_metric"][0]
    created = post_form(logged_in, CREATE_MODEL, fields)
    wait_done(logged_in, created["id"], timeout=300)
    model = logged_in.get(f"/models/{created['id']}.json").get_json()
    early = model["early_stopping"]
    assert early["stopped_early"] and early["metric"] == "val/accuracy"
    last = model["snapshots"][-1]
    assert last < 40  # it stopped before the planned 40 epochs, with a snapshot where it stopped
    accuracy = val_accuracy(model["metrics"])
    assert early["best_value"] == max(accuracy)
    assert model["best_epoch"] <= last - 2 and model["best_epoch"] in model["snapshots"]
