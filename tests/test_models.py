"""Image classification models through the app: DIGITS' form, its errors, sweeps (training itself: test_training)."""

from __future__ import annotations

import pytest
from helpers import CREATE_MODEL, lenet_fields, make_dataset

from digits.web.services import services_of


@pytest.fixture
def dataset_id(logged_in, digits_folder):
    return make_dataset(logged_in, digits_folder, folder_pct_val="25")


def test_form_errors_say_what_to_fix(logged_in, dataset_id):
    cases = {
        "framework": (dict(framework="caffe"), "'caffe' is not a valid choice; use one of: tensorflow, torch."),
        "dataset": (dict(dataset="20000101-000000-0000"), "is not a valid choice"),
        "solver_type": (dict(solver_type="LBFGS"), "use one of: SGD, MOMENTUM, NESTEROV"),
        "batch_size": (dict(batch_size="500"), "Batch size 500 is larger than the 220 training images of digits."),
        "learning_rate": (dict(learning_rate="0.1, fast"), "'fast' is not a number."),
        "custom_network": (
            dict(method="custom", custom_network="class UserModel(Tower):\n    def f(self)\n        pass\n"),
            "SyntaxError on line 2",
        ),
        "select_gpu_count": (dict(select_gpu_count="2"), "2 GPUs were asked for but this machine has 0."),
    }
    for field, (extra, message) in cases.items():
        answer = logged_in.post(CREATE_MODEL, data=lenet_fields(dataset_id, **extra))
        assert answer.status_code == 400, field
        assert any(message in error for error in answer.get_json()["errors"][field]), answer.get_json()
    missing_class = logged_in.post(CREATE_MODEL, data=lenet_fields(dataset_id, method="custom", custom_network="x = 1"))
    assert missing_class.get_json()["errors"]["custom_network"] == ["The network must define class UserModel(Tower)."]
    assert logged_in.get("/index.json").get_json()["models"] == []


def test_sweep_makes_one_job_per_combination(app, logged_in, dataset_id):
    answer = logged_in.post(CREATE_MODEL, data=lenet_fields(dataset_id, learning_rate="0.1,0.01", batch_size="8,16"))
    jobs = answer.get_json()["jobs"]
    assert sorted(j["name"] for j in jobs) == [
        "lenet (lr=0.01, batch=16)", "lenet (lr=0.01, batch=8)", "lenet (lr=0.1, batch=16)", "lenet (lr=0.1, batch=8)",
    ]  # fmt: skip
    services = services_of(app)
    for answer_job in jobs:
        job = services.store.get(answer_job["id"])
        args = job.tasks[0].args
        assert args[args.index("--learning-rate") + 1] == job.form["learning_rate"]
        assert args[args.index("--batch-size") + 1] == job.form["batch_size"]
        assert job.depends_on_jobs == [dataset_id]
        services.scheduler.abort(job, wait=True)
    # the dataset cannot go while models use it
    refused = logged_in.delete(f"/datasets/{dataset_id}")
    assert refused.status_code == 409 and len(refused.get_json()["dependents"]) == 4


def test_standard_network_sources(client):
    lenet = client.get("/models/networks/lenet.py")
    assert lenet.mimetype == "text/plain" and "class UserModel(Tower)" in lenet.get_data(as_text=True)
    assert client.get("/models/networks/nonet.py").status_code == 404


def test_augmentation_fields_become_training_arguments():
    from digits.models.image_classification import augmentation_args

    assert augmentation_args({"aug_flip": "none", "aug_rot": "0", "aug_whitening": "0"}) == []
    form = {"aug_flip": "fliplr", "aug_quad_rot": "rot180", "aug_rot": "10", "aug_noise": "0.1", "aug_whitening": "y",
            "aug_hsv_use": "1", "aug_hsv_h": "0.02", "aug_hsv_s": "0.04", "aug_hsv_v": ""}  # fmt: skip
    assert augmentation_args(form) == [
        "--aug-flip", "fliplr", "--aug-quad-rot", "rot180", "--aug-rot", "10", "--aug-noise", "0.1",
        "--aug-whitening", "--aug-hsv", "0.02", "0.04", "0",
    ]  # fmt: skip
