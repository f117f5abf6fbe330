"""Using a trained model through the app: classify one and many (DIGITS' REST step 5), Top N, background jobs."""

from __future__ import annotations

import io
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import logged_in_client, make_dataset, poll, train_lenet, wait_done, wait_for_status
from PIL import Image
from sample_images import write_digits_folder
from seed_networks import AUTOENCODER

from digits.web.services import services_of

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(make_module_app, tmp_path_factory):
    """An app with a LeNet trained on 60 digits per class (seeded), and 10 held-out digits per class."""
    root = tmp_path_factory.mktemp("inference")
    train = write_digits_folder(root / "train", per_class=60)
    held_out = write_digits_folder(root / "held-out", per_class=10, skip=60)
    app = make_module_app(root / "jobs", inference_sync_limit=50)
    client = logged_in_client(app)
    dataset = make_dataset(client, train, folder_pct_val="20")
    model = train_lenet(client, dataset, train_epochs="10", batch_size="16", learning_rate="0.02", lr_policy="fixed",
                        shuffle="y", random_seed="3")  # fmt: skip
    return app, client, model, held_out


def held_out_list(folder, count: int | None = None) -> str:
    lines = [f"{path} {path.parent.name}" for path in sorted(folder.glob("*/*.png"))]
    return "\n".join(lines[:count]) + "\n"


def test_rest_step_5_classify_one(trained):
    _, client, model, held_out = trained
    right = 0
    for label in "0123456789":
        image = sorted((held_out / label).glob("*.png"))[0]
        answer = client.post(
            "/models/images/classification/classify_one.json",
            data={"job_id": model, "image_file": (open(image, "rb"), image.name)},
        )
        assert answer.status_code == 200, answer.get_json()
        predictions = answer.get_json()["predictions"]
        assert len(predictions) == 5 and all(len(p) == 2 for p in predictions)
        assert predictions[0][1] >= predictions[1][1] and 0 < sum(p for _, p in predictions) <= 100.01
        right += predictions[0][0] == label
    assert right >= 8, f"only {right} of 10 held-out digits right"


def test_classify_one_by_path_with_visualizations(trained):
    _, client, model, held_out = trained
    image = sorted((held_out / "3").glob("*.png"))[0]
    answer = client.post(
        "/models/images/classification/classify_one.json",
        data={"job_id": model, "image_path": str(image), "show_visualizations": "y", "snapshot_epoch": "5"},
    ).get_json()
    assert answer["snapshot_epoch"] == 5.0
    names = [layer["name"] for layer in answer["layers"]]
    assert names[:4] == ["conv1", "pool1", "conv2", "pool2"]
    conv1 = answer["layers"][0]
    assert conv1["activation"]["shape"] == [24, 24, 20] and conv1["params"] == 5 * 5 * 20 + 20
    assert answer["parameters"] == sum(layer["params"] for layer in answer["layers"])
    weights = conv1["weights"][0]
    assert weights["shape"] == [5, 5, 1, 20] and sum(weights["histogram"]["counts"]) == 500
    Image.open(io.BytesIO(__import__("base64").b64decode(weights["image"]))).verify()


def test_classify_one_bad_input(trained, tmp_path):
    _, client, model, held_out = trained
    url = "/models/images/classification/classify_one.json"
    not_image = client.post(url, data={"job_id": model, "image_file": (io.BytesIO(b"hello"), "notes.png")})
    assert not_image.status_code == 400
    assert "not an image" in not_image.get_json()["errors"]["image_file"][0]
    missing = client.post(url, data={"job_id": model, "image_path": str(tmp_path / "nope.png")})
    assert missing.status_code == 400 and "file not found" in missing.get_json()["errors"]["image_path"][0]
    unknown = client.post(url, data={"job_id": "20200101-000000-dead", "image_path": "x.png"})
    assert unknown.status_code == 404 and "20200101-000000-dead" in unknown.get_json()["errors"]
    no_snapshot = client.post(url, data={"job_id": model, "snapshot_epoch": "77", "image_path": "x.png"})
    assert no_snapshot.status_code == 400
    assert "no snapshot at epoch 77" in no_snapshot.get_json()["errors"]["snapshot_epoch"][0]
    nothing = client.post(url, data={"job_id": model})
    assert "Upload an image" in nothing.get_json()["errors"]["image_file"][0]
    # A color image for a gray model is converted, as DIGITS did; a huge one is refused by its header.
    color = io.BytesIO()
    Image.fromarray(np.full((60, 40, 3), 200, np.uint8)).save(color, format="JPEG")
    color.seek(0)
    converted = client.post(url, data={"job_id": model, "image_file": (color, "color.jpg")})
    assert converted.status_code == 200 and len(converted.get_json()["predictions"]) == 5
    huge = io.BytesIO()
    Image.new("L", (12000, 12000)).save(huge, format="PNG")
    huge.seek(0)
    refused = client.post(url, data={"job_id": model, "image_file": (huge, "huge.png")})
    assert refused.status_code == 400 and "megapixel limit" in refused.get_json()["errors"]["image_file"][0]


def test_rest_step_5_classify_many_with_labels(trained, tmp_path):
    _, client, model, held_out = trained
    listed = held_out_list(held_out, 40) + f"{tmp_path / 'gone.png'} 3\n"
    answer = client.post(
        "/models/images/classification/classify_many.json",
        data={"job_id": model, "image_list": (io.BytesIO(listed.encode()), "list.txt")},
    )
    assert answer.status_code == 200, answer.get_json()
    data = answer.get_json()
    assert len(data["classifications"]) == 40
    assert data["errors"] == [{"path": str(tmp_path / "gone.png"), "error": "file not found"}]
    summary = data["summary"]
    assert summary["count"] == 40 and summary["top1_accuracy"] >= 0.8
    assert summary["top5_accuracy"] >= summary["top1_accuracy"]
    matrix = np.array(summary["confusion_matrix"])
    assert matrix.shape == (10, 10) and matrix.sum() == 40
    assert np.trace(matrix) == round(summary["top1_accuracy"] * 40)


def test_long_list_runs_as_a_job(trained):
    _, client, model, held_out = trained
    listed = held_out_list(held_out)  # 100 images, over the fixture's limit of 50
    started = client.post(
        "/models/images/classification/classify_many.json",
        data={"job_id": model, "image_list": (io.BytesIO(listed.encode()), "list.txt")},
    )
    assert started.status_code == 202
    job = started.get_json()
    data = poll(lambda: client.get(job["url"] + ".json").get_json(), lambda data: data["status"] in ("Done", "Error"),
                timeout=120, interval=0.3, what=f"inference job {job['id']} to finish")  # fmt: skip
    assert data["status"] == "Done", data["error"]
    assert len(data["classifications"]) == 100 and data["summary"]["top1_accuracy"] >= 0.8


def test_top_n_over_the_validation_database(trained):
    _, client, model, _ = trained
    started = client.post(
        "/models/images/classification/top_n.json", data={"job_id": model, "db": "val", "top_n": "3"}
    ).get_json()
    wait_done(client, started["id"], timeout=120)
    data = client.get(started["url"] + ".json").get_json()
    assert set(data["top_n"]) == set("0123456789")
    best = data["top_n"]["7"]
    assert len(best) == 3 and best[0]["percent"] >= best[-1]["percent"]


def test_unusable_models_say_why_and_the_worker_comes_back(trained):
    app, client, model, held_out = trained
    url = "/models/images/classification/classify_one.json"
    image = str(sorted((held_out / "1").glob("*.png"))[0])
    directory = Path(client.get(f"/models/{model}.json").get_json()["directory"])
    for leftover in directory.glob("snapshot_1.0.ckpt*"):
        leftover.unlink()
    deleted = client.post(url, data={"job_id": model, "snapshot_epoch": "1", "image_path": image})
    assert deleted.status_code == 400
    assert "snapshot of epoch 1 was deleted" in deleted.get_json()["errors"]["snapshot_epoch"][0]
    dataset = client.get(f"/models/{model}.json").get_json()["dataset"]["id"]
    not_a_model = client.post(url, data={"job_id": dataset, "image_path": image})
    assert not_a_model.status_code == 404 and "not a model" in not_a_model.get_json()["errors"]
    broken = client.post(
        "/models/images/classification.json",
        data=dict(method="custom", custom_network=AUTOENCODER, train_epochs="1", model_name="broken", dataset=dataset),
    ).get_json()["id"]
    assert wait_for_status(client, broken)["status"] == "Error"
    untrained = client.post(url, data={"job_id": broken, "image_path": image})
    assert untrained.status_code == 400 and "no snapshot yet" in untrained.get_json()["errors"]["snapshot_epoch"][0]
    # A worker that dies (killed, out of memory) is replaced by the next request.
    worker = services_of(app).inference.workers["tensorflow"]
    os.kill(worker.pid, signal.SIGKILL)
    time.sleep(0.5)
    again = client.post(url, data={"job_id": model, "image_path": image})
    assert again.status_code == 200 and len(again.get_json()["predictions"]) == 5
