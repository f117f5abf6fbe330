"""Object detection: KITTI datasets (every bad input listed), DetectNet trained through the app with mAP at
each validation, boxes from infer_one/infer_many in the original image's pixels, and the curl walk-through."""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
import zipfile

import numpy as np
import pytest
from detection_data import write_detection_folder
from helpers import logged_in_client, poll, wait_done
from PIL import Image
from server import LiveServer

pytestmark = pytest.mark.slow

CREATE = "/datasets/generic/create/image-object-detection.json"
CLASSES = "zero,one,seven"  # the other digits become dontcare regions


def detection_fields(root, **overrides) -> dict:
    """DIGITS' image-object-detection form for ``root/train`` and ``root/val`` (grayscale, as generated)."""
    return {
        "dataset_name": "digits boxes", "train_image_folder": str(root / "train" / "images"),
        "train_label_folder": str(root / "train" / "labels"), "val_image_folder": str(root / "val" / "images"),
        "val_label_folder": str(root / "val" / "labels"), "channel_conversion": "L", "custom_classes": CLASSES,
        **overrides,
    }  # fmt: skip


def detectnet_fields(dataset: str, **overrides) -> dict:
    """New Model > Images > Other with the standard DetectNet, as DIGITS' scripts post it."""
    return {
        "method": "standard", "standard_networks": "detectnet", "framework": "tensorflow", "dataset": dataset,
        "model_name": "detector", "solver_type": "ADAM", "learning_rate": "0.002", "use_mean": "none",
        "batch_size": "32", "train_epochs": "8", "val_interval": "2", "lr_policy": "fixed", **overrides,
    }  # fmt: skip


@pytest.fixture(scope="module")
def canvases(tmp_path_factory):
    root = tmp_path_factory.mktemp("canvases")
    write_detection_folder(root / "train", 400)
    write_detection_folder(root / "val", 60, held_out=True)
    return root


@pytest.fixture(scope="module")
def client(make_module_app):
    return logged_in_client(make_module_app())


@pytest.fixture(scope="module")
def dataset(client, canvases) -> str:
    answer = client.post(CREATE, data=detection_fields(canvases))
    assert answer.status_code == 200, answer.get_json()
    wait_done(client, answer.get_json()["id"])
    return answer.get_json()["id"]


@pytest.fixture(scope="module")
def model(client, dataset) -> str:
    """DetectNet trained for about a minute on 400 canvases (3200 images seen)."""
    answer = client.post("/models/images/generic.json", data=detectnet_fields(dataset))
    assert answer.status_code == 200, answer.get_json()
    wait_done(client, answer.get_json()["id"], timeout=600)
    return answer.get_json()["id"]


def test_the_dataset_page_counts_images_and_boxes_per_class_and_stage(client, dataset, canvases):
    info = client.get(f"/datasets/{dataset}.json").get_json()
    assert info["extension_id"] == "image-object-detection" and info["labels"] == ["zero", "one", "seven"]
    assert info["entries"] == {"train": 400, "val": 60}
    written = {"train": 0, "val": 0}
    for stage in written:
        for label in (canvases / stage / "labels").glob("*.txt"):
            written[stage] += sum(line.split()[0] in CLASSES.split(",") for line in label.read_text().splitlines())
    assert {stage: sum(counts.values()) for stage, counts in info["distribution"].items()} == written
    assert info["extension_userdata"]["image_counts"] == {"train": 400, "val": 60}
    # Digits not kept are dontcare: listed once per class and stage, with their count.
    assert any("'two' is not among the classes kept" in p["reason"] for p in info["label_problems"])


def test_bad_label_files_are_skipped_and_listed_with_the_reason(client, tmp_path):
    root = tmp_path / "bad"
    write_detection_folder(root / "train", 12)
    labels, images = root / "train" / "labels", root / "train" / "images"
    with open(labels / "000001.txt", "a") as f:
        f.write("zero 0 0\n")  # malformed: too few fields
        f.write("zero 0.0 0 0.0 left 1 2 3\n")  # malformed: a word for a number
        f.write("zero 0.0 0 0.0 200 200 230 230\n")  # wholly outside the 128x128 image: skipped
        f.write("one 0.0 0 0.0 -5 10 20 30\n")  # partly outside: clipped
        f.write("car 0.0 0 0.0 5 10 20 30\n")  # a class not kept
    (labels / "000002.txt").unlink()  # an image without a label file
    (labels / "orphan.txt").write_text("zero 0.0 0 0.0 1 1 10 10\n")  # a label file without an image
    (images / "000003.png").write_bytes(b"not a png")  # an unreadable image
    fields = detection_fields(root, val_image_folder="", val_label_folder="", folder_pct_val="0")
    answer = client.post(CREATE, data=fields)
    assert answer.status_code == 200, answer.get_json()
    wait_done(client, answer.get_json()["id"])
    info = client.get(f"/datasets/{answer.get_json()['id']}.json").get_json()
    problems = {(p["path"].rsplit("/", 1)[-1], p["line"]): p["reason"] for p in info["label_problems"]}
    lines = len((labels / "000001.txt").read_text().splitlines())
    assert "malformed line (skipped)" in problems[("000001.txt", lines - 4)]
    assert "must be numbers" in problems[("000001.txt", lines - 3)]
    assert "outside the 128x128 image (skipped)" in problems[("000001.txt", lines - 2)]
    assert "clipped to the image" in problems[("000001.txt", lines - 1)]
    assert "label file without an image" in problems[("orphan.txt", None)]
    assert any("'car' is not among the classes kept: 1 box(es)" in p["reason"] for p in info["label_problems"])
    skipped = {s["path"].rsplit("/", 1)[-1]: s["reason"] for s in info["skipped"]}
    assert "no label file 000002.txt" in skipped["000002.png"]
    assert "000003.png" in skipped and info["entries"] == {"train": 10}


def test_the_form_says_what_to_fix(client, canvases, tmp_path):
    missing = client.post(CREATE, data=detection_fields(canvases, train_label_folder=str(tmp_path / "nowhere")))
    assert missing.status_code == 400 and "is not a folder on the server" in json.dumps(missing.get_json())
    half = client.post(CREATE, data=detection_fields(canvases, resize_image_width="64"))
    assert half.status_code == 400 and "Give both the resize width and height" in json.dumps(half.get_json())
    one_side = client.post(CREATE, data=detection_fields(canvases, val_label_folder=""))
    assert one_side.status_code == 400 and "val_image_folder is set" in json.dumps(one_side.get_json())


def test_explore_draws_the_ground_truth_boxes(client, dataset):
    page = client.get(f"/datasets/{dataset}/records?db=val&size=4").get_data(as_text=True)
    assert page.count('class="bbox position-absolute"') >= 1 and "bbox-threshold" in page
    assert any(f">{name} 1.00<" in page for name in CLASSES.split(","))


def test_training_reports_precision_recall_and_a_rising_map(client, model):
    metrics = client.get(f"/models/{model}.json").get_json()["metrics"]
    val = [m["val"] for m in metrics if "val" in m]
    assert {"mAP", "precision", "recall", "AP_zero", "AP_one", "AP_seven", "coverage_loss", "bbox_loss"} <= set(val[-1])
    # Chance is 0: random boxes at IoU 0.5 with the right class almost never happen.
    assert val[-1]["mAP"] > 0.3 and val[-1]["mAP"] > val[0]["mAP"], [v["mAP"] for v in val]


def test_infer_one_answers_boxes_in_the_original_images_pixels(client, model, canvases, tmp_path):
    image = canvases / "val" / "images" / "000000.png"
    answer = client.post("/models/images/generic/infer_one.json", data={"job_id": model, "image_path": str(image)})
    assert answer.status_code == 200, answer.get_json()
    boxes = np.array(answer.get_json()["outputs"]["bbox-list"][0])
    assert boxes.ndim == 2 and boxes.shape[1] == 5 and len(boxes)
    assert len(answer.get_json()["outputs"]["bbox-classes"][0]) == len(boxes)
    larger = tmp_path / "larger.png"
    Image.open(image).resize((256, 256), Image.BILINEAR).save(larger)
    scaled = client.post("/models/images/generic/infer_one.json", data={"job_id": model, "image_path": str(larger)})
    found = np.array(scaled.get_json()["outputs"]["bbox-list"][0])
    # The same box, in the larger image's pixels (found among the answers: two objects of about the same score
    # may come in either order once the image has been resized twice).
    nearest = found[np.abs(found[:, :4] - boxes[0][:4] * 2).max(axis=1).argmin()]
    assert np.allclose(nearest[:4], boxes[0][:4] * 2, atol=6), (found, boxes)

    page = client.post("/models/images/generic/infer_one", data={"job_id": model, "image_path": str(image)},
                       headers={"Accept": "text/html"}).get_data(as_text=True)  # fmt: skip
    assert 'id="bbox-threshold"' in page and 'class="bbox position-absolute"' in page


def test_infer_many_scores_a_labelled_list_and_downloads_kitti_files(client, model, canvases):
    val = canvases / "val"
    listing = "".join(f"images/{n:06d}.png labels/{n:06d}.txt\n" for n in range(20))
    fields = {"job_id": model, "image_folder": str(val), "image_list": (io.BytesIO(listing.encode()), "list.txt")}
    answer = client.post("/models/images/generic/infer_many.json", data=fields).get_json()
    assert len(answer["outputs"]) == 20 and answer["errors"] == []
    assert all(set(o) == {"bbox-list", "bbox-classes"} for o in answer["outputs"].values())
    assert answer["scores"]["mAP"] > 0.2 and 0 <= answer["scores"]["recall"] <= 1

    fields["image_list"] = (io.BytesIO(listing.encode()), "list.txt")
    page = client.post("/models/images/generic/infer_many", data=fields, headers={"Accept": "text/html"})
    html = page.get_data(as_text=True)
    assert 'id="detection-scores"' in html
    data = html.split('id="kitti-download" href="data:application/zip;base64,', 1)[1].split('"', 1)[0]
    archive = zipfile.ZipFile(io.BytesIO(base64.b64decode(data)))
    assert len(archive.namelist()) == 20
    first = archive.read("000000.txt").decode().splitlines()[0].split()
    assert first[0] in CLASSES.split(",") and len(first) == 16  # KITTI's 15 fields and the score


def test_a_network_without_the_detection_grid_is_refused_with_what_to_fix(client, dataset):
    network = """
class UserModel(Tower):
    @model_property
    def inference(self):
        return slim.fully_connected(slim.flatten(self.x), 10, activation_fn=None)

    @model_property
    def loss(self):
        return digits.detection_loss(self.inference, self.y, self.input_shape)
"""
    fields = detectnet_fields(dataset, method="custom", custom_network=network, train_epochs="1")
    job = client.post("/models/images/generic.json", data=fields).get_json()["id"]
    status = poll(lambda: client.get(f"/models/{job}/status").get_json(), lambda s: s["status"] in ("Done", "Error"),
                  timeout=120)  # fmt: skip
    assert status["status"] == "Error"
    assert "a detection network's inference must return a grid [batch, rows, columns, 5 + classes]" in status["error"]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_walk_through_with_curl(canvases, tmp_path):
    server = LiveServer(tmp_path / "jobs").start()
    cookies = str(tmp_path / "cookies.txt")
    try:

        def curl(*args: str) -> dict:
            done = subprocess.run(["curl", "-s", "-b", cookies, "-c", cookies, "-w", "\n%{http_code}", *args],
                                  capture_output=True, text=True, timeout=120)  # fmt: skip
            body, _, status = done.stdout.rpartition("\n")
            assert status == "200", body
            return json.loads(body)

        # DIGITS' session: log in (single-user mode: a name), keep the cookie.
        subprocess.run(["curl", "-s", "-c", cookies, "-F", "username=fred", f"{server.url}/login"], check=True)

        fields = detection_fields(canvases, dataset_name="curl boxes")
        dataset = curl(*[a for k, v in fields.items() for a in ("-F", f"{k}={v}")],
                       f"{server.url}/datasets/generic/create/image-object-detection.json")["id"]  # fmt: skip
        poll(lambda: curl(f"{server.url}/datasets/{dataset}/status"), lambda s: s["status"] == "Done", timeout=120)
        model_fields = detectnet_fields(dataset, train_epochs="2")
        model = curl(*[a for k, v in model_fields.items() for a in ("-F", f"{k}={v}")],
                     f"{server.url}/models/images/generic.json")["id"]  # fmt: skip
        poll(lambda: curl(f"{server.url}/models/{model}/status"), lambda s: s["status"] == "Done", timeout=300)
        image = canvases / "val" / "images" / "000001.png"
        one = curl("-F", f"job_id={model}", "-F", f"image_file=@{image}",
                   f"{server.url}/models/images/generic/infer_one.json")  # fmt: skip
        assert isinstance(one["outputs"]["bbox-list"][0], list)
        listing = tmp_path / "list.txt"
        listing.write_text("".join(f"images/{n:06d}.png labels/{n:06d}.txt\n" for n in range(5)))
        many = curl("-F", f"job_id={model}", "-F", f"image_folder={canvases / 'val'}", "-F", f"image_list=@{listing}",
                    f"{server.url}/models/images/generic/infer_many.json")  # fmt: skip
        assert len(many["outputs"]) == 5 and "mAP" in many["scores"]
    finally:
        server.stop()
