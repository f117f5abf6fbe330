"""Data and view extensions: plugins pip-installed by the tests, generic datasets, broken plugins, the views."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import lmdb
import numpy as np
import pytest
import requests
from helpers import logged_in_client, poll, wait_done, wait_for_status
from PIL import Image
from plugin_packages import (
    TUTORIAL_DIST,
    TUTORIAL_ID,
    install,
    installed,
    uninstall,
    write_dicom_study,
    write_gray_images,
    write_tutorial_plugin,
)
from server import LiveServer

from digits.datasets.generic import DatasetInfo
from digits.extensions.data import GROUP as DATA_GROUP
from digits.extensions.data import create_extension
from digits.extensions.view import discover_view_extensions
from digits.extensions.web import render_view
from digits.records import decode_record, record_image, record_key, record_label
from digits.utils.constants import COLOR_PALETTE_ATTRIBUTE


@pytest.fixture
def restart(make_app):
    """Apps on one jobs directory, made after the plugins of the test were installed (as a restart would)."""

    def start():
        app = make_app()
        return app, logged_in_client(app)

    return start


def create(client, extension_id: str, **fields) -> dict:
    answer = client.post(f"/datasets/generic/create/{extension_id}.json", data=fields)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def created_dataset(client, extension_id: str, **fields) -> dict:
    """Create a dataset and wait for it; returns its JSON (status included)."""
    job_id = create(client, extension_id, **fields)["id"]
    wait_for_status(client, job_id)
    return client.get(f"/datasets/{job_id}.json").get_json()


def read_db(path: Path) -> list:
    env = lmdb.open(str(path), readonly=True, lock=False)
    try:
        with env.begin() as txn:
            return [decode_record(txn.get(record_key(i))) for i in range(env.stat()["entries"])]
    finally:
        env.close()


# -- a plugin from the tutorial ----------------------------------------------------------------------------
def test_tutorial_plugin_installed_discovered_used_and_uninstalled(tmp_path, restart):
    plugin = write_tutorial_plugin(tmp_path / "src")
    images = write_gray_images(tmp_path / "gray", count=20)
    install(plugin, tmp_path)
    try:
        app, client = restart()
        extensions = client.get("/extensions.json").get_json()["data"]
        mine = next(e for e in extensions["extensions"] if e["id"] == TUTORIAL_ID)
        assert mine["title"] == "Gray Images" and mine["category"] == "Tutorial"
        assert "tutorial" in mine["origin"] and "0.0.1" in mine["origin"]
        home = client.get("/").get_data(as_text=True)
        assert f'id="new-dataset-{TUTORIAL_ID}"' in home and ">Tutorial</h6>" in home

        page = client.get(f"/datasets/generic/new/{TUTORIAL_ID}")
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        assert 'name="image_folder"' in html and 'name="dataset_name"' in html and "Gray Images" in html

        errors = client.post(f"/datasets/generic/create/{TUTORIAL_ID}.json", data={"dataset_name": "x"})
        assert errors.status_code == 400 and "image_folder" in errors.get_json()["errors"]

        dataset = created_dataset(client, TUTORIAL_ID, dataset_name="gray", image_folder=str(images))
        assert dataset["status"] == "Done", dataset["error"]
        assert dataset["entries"] == {"train": 15, "val": 5}
        assert dataset["feature_dims"] == [12, 12, 1] and dataset["label_kind"] == "class"
        assert dataset["labels"] == ["dark", "bright"] and dataset["extension_title"] == "Gray Images"
        directory = Path(dataset["directory"])
        records = read_db(directory / "train_db")
        assert len(records) == 15 and {r.label for r in records} == {0, 1}
        first = record_image(records[0])
        assert first.shape == (12, 12, 1) and first.dtype == np.uint8
        assert records[0].label == int(first.mean() > 127)
        assert (directory / "mean.png").is_file()
        userdata = json.loads((directory / "extension_userdata.json").read_text())
        assert userdata["image_folder"] == str(images) and userdata["is_inference_db"] is False

        # The inference side of the plugin: its form renders, and an inference database is built from it.
        with app.test_request_context():
            from digits.extensions.web import current_plugins, render_extension_template

            extension = current_plugins().data.get(TUTORIAL_ID)
            instance = create_extension(extension.cls, userdata, is_inference_db=True)
            form = instance.get_inference_form()
            html = render_extension_template(extension, *extension.cls.get_inference_template(form))
            assert 'name="test_image_file"' in html
        inference = tmp_path / "inference"
        inference.mkdir()
        (inference / "form.json").write_text(json.dumps({"test_image_file": str(images / "image001.png")}))
        done = subprocess.run(
            [sys.executable, "-m", "digits.tools.create_generic_db", "--extension", TUTORIAL_ID, "--form",
             "form.json", "--inference", "--userdata", str(directory / "extension_userdata.json"), "--workers", "1"],
            cwd=inference, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        (test_record,) = read_db(inference / "test_db")
        assert record_label(test_record) == 1 and not (inference / "train_db").exists()

        # Uninstalled while its dataset remains: the dataset still shows, the plugin's pages say why not.
        uninstall(TUTORIAL_DIST)
        app, client = restart()
        assert client.get(f"/datasets/{dataset['id']}").status_code == 200
        again = client.get(f"/datasets/{dataset['id']}.json").get_json()
        assert again["entries"] == {"train": 15, "val": 5} and again["extension_id"] == TUTORIAL_ID
        clone = client.get(f"/clone/{dataset['id']}", follow_redirects=True)
        assert clone.status_code == 404 and "installed" in clone.get_json()["errors"]
        gone = client.post(f"/datasets/generic/create/{TUTORIAL_ID}.json", data={"dataset_name": "y"})
        assert gone.status_code == 404
    finally:
        uninstall(TUTORIAL_DIST)


# -- broken plugins ----------------------------------------------------------------------------------------
BROKEN_PLUGINS = {
    "setup.py": f"""
        from setuptools import setup
        setup(
            name="digits_broken_test_plugins",
            version="0.1",
            packages=["digitsBrokenPlugins"],
            entry_points={{"{DATA_GROUP}": [
                "class=digitsBrokenPlugins.missing:DataIngestion",
                "encode=digitsBrokenPlugins.plugins:RaisingEncode",
                "shape=digitsBrokenPlugins.plugins:WrongShape",
                "mixed=digitsBrokenPlugins.plugins:MixedShapes",
                "type=digitsBrokenPlugins.plugins:TextLabel",
                "template=digitsBrokenPlugins.plugins:RaisingTemplate",
                "category=digitsBrokenPlugins.plugins:NoCategory",
            ]}},
        )
        """,
    "digitsBrokenPlugins/__init__.py": "",
    "digitsBrokenPlugins/missing.py": "import a_module_nobody_installed  # noqa: F401\n",
    "digitsBrokenPlugins/plugins.py": """
        import numpy as np
        from flask_wtf import FlaskForm
        from wtforms import IntegerField

        from digits.extensions.data.interface import DataIngestionInterface


        class CountForm(FlaskForm):
            count = IntegerField("Count", default=12)


        class Base(DataIngestionInterface):
            @staticmethod
            def get_category():
                return "Broken"

            @staticmethod
            def get_dataset_form():
                return CountForm()

            @staticmethod
            def get_dataset_template(form):
                return "{{ form.count.label }} {{ form.count() }}", {"form": form}

            def itemize_entries(self, stage):
                return list(range(self.count)) if stage == "train" else []

            def encode_entry(self, entry):
                return np.full((1, 4, 4), entry, np.uint8), entry % 2


        class RaisingEncode(Base):
            @staticmethod
            def get_id():
                return "broken-encode"

            @staticmethod
            def get_title():
                return "Raises in encode_entry"

            def encode_entry(self, entry):
                if entry == 7:
                    raise ValueError("entry seven is cursed")
                return super().encode_entry(entry)


        class WrongShape(Base):
            @staticmethod
            def get_id():
                return "broken-shape"

            @staticmethod
            def get_title():
                return "Returns 4-D arrays"

            def encode_entry(self, entry):
                return np.zeros((1, 1, 4, 4), np.uint8), 0


        class MixedShapes(Base):
            @staticmethod
            def get_id():
                return "broken-mixed"

            @staticmethod
            def get_title():
                return "Changes shape"

            def encode_entry(self, entry):
                size = 4 if entry < 9 else 5
                return np.zeros((1, size, size), np.uint8), 1


        class TextLabel(Base):
            @staticmethod
            def get_id():
                return "broken-type"

            @staticmethod
            def get_title():
                return "Labels are text"

            def encode_entry(self, entry):
                return np.zeros((1, 4, 4), np.uint8), np.array(["a label"])


        class RaisingTemplate(Base):
            @staticmethod
            def get_id():
                return "broken-template"

            @staticmethod
            def get_title():
                return "Raises in its template"

            @staticmethod
            def get_dataset_template(form):
                raise KeyError("the template went missing")


        class NoCategory(Base):
            @staticmethod
            def get_id():
                return "broken-category"

            @staticmethod
            def get_title():
                return "No category"

            @staticmethod
            def get_category():
                raise NotImplementedError
        """,
}


@pytest.fixture
def broken_plugins(tmp_path):
    source = tmp_path / "broken-src" / "brokenPlugins"
    for name, text in BROKEN_PLUGINS.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text(textwrap.dedent(text).lstrip())
    with installed({"digits_broken_test_plugins": source}, tmp_path):
        yield


def test_broken_plugins_are_listed_and_fail_their_own_jobs_only(broken_plugins, restart, tmp_path):
    app, client = restart()
    data = client.get("/extensions.json").get_json()["data"]
    working = {e["id"] for e in data["extensions"]}
    assert {"broken-encode", "broken-shape", "broken-type", "broken-template", "image-processing"} <= working
    reasons = {b["name"]: b["reason"] for b in data["broken"]}
    assert "No module named 'a_module_nobody_installed'" in reasons["digitsBrokenPlugins.missing:DataIngestion"]
    assert reasons["digitsBrokenPlugins.plugins:NoCategory"] == "NoCategory.get_category() raised NotImplementedError"
    assert "a_module_nobody_installed" in next(b["traceback"] for b in data["broken"] if "missing" in b["name"])
    home = client.get("/")
    assert home.status_code == 200 and "Broken plugins" in home.get_data(as_text=True)

    # Raising in encode_entry: the job errors with the plugin's traceback, and leaves no database.
    failed = created_dataset(client, "broken-encode", dataset_name="cursed", dsopts_batch_size="4")
    assert failed["status"] == "Error"
    assert "entry seven is cursed" in failed["error"]["message"] and "entry 7 of train" in failed["error"]["message"]
    assert "plugins.py" in failed["error"]["traceback"] and "raise ValueError" in failed["error"]["traceback"]
    assert not [p.name for p in Path(failed["directory"]).iterdir() if p.name.endswith(("_db", "_db.partial"))]

    # Arrays of the wrong shape or type: a job error that says what was wrong.
    wrong = created_dataset(client, "broken-shape", dataset_name="4d")
    assert wrong["status"] == "Error" and "must be a 3-D array CHW" in wrong["error"]["message"]
    text = created_dataset(client, "broken-type", dataset_name="text")
    assert text["status"] == "Error" and "the label must be an array of numbers" in text["error"]["message"]

    # Raising in its template: the page says so with the traceback; the plugin is then listed as broken.
    page = client.get("/datasets/generic/new/broken-template", headers={"Accept": "text/html"})
    assert page.status_code == 500
    assert "the template went missing" in page.get_data(as_text=True) and "Traceback" in page.get_data(as_text=True)
    reasons = {b["name"]: b["reason"] for b in client.get("/extensions.json").get_json()["data"]["broken"]}
    assert "KeyError" in reasons["broken-template"]
    assert client.get("/datasets/generic/new/broken-template").status_code == 404

    # The others keep working, in the same server.
    assert client.get("/datasets/generic/new/image-processing").status_code == 200
    ok = created_dataset(client, "broken-encode", dataset_name="fewer", count="5")
    assert ok["status"] == "Done" and ok["entries"] == {"train": 5}


def test_mixed_shapes_are_refused_by_the_tool_run_by_hand(broken_plugins, tmp_path):
    folder = tmp_path / "tool"
    folder.mkdir()
    (folder / "form.json").write_text(json.dumps({"count": 12}))
    done = subprocess.run(
        [sys.executable, "-m", "digits.tools.create_generic_db", "--extension", "broken-mixed", "--form", "form.json",
         "--workers", "2", "--batch-size", "3"],
        cwd=folder, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 1 and events[-1]["event"] == "error"
    message = events[-1]["message"]
    assert "entry 9 of train" in message and "feature 1x5x5 (CHW) uint8" in message and "1x4x4" in message
    assert not (folder / "train_db").exists() and not (folder / "train_db.partial").exists()


# -- the shipped plugins -----------------------------------------------------------------------------------
def start_server(jobs: Path) -> LiveServer:
    """A live server; on a busy machine its first answer may take longer than LiveServer waits for one."""
    server = LiveServer(jobs)
    try:
        return server.start(timeout=60)
    except requests.exceptions.ReadTimeout:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(server.url + "/index.json", timeout=10).ok:
                    return server
            except requests.exceptions.RequestException:
                time.sleep(0.5)
        server.stop()
        raise


def test_image_gradients_dataset_compat_step_7_with_curl(shipped_plugins, tmp_path):
    """compat.md step 7, the dataset: ``POST /datasets/generic/create/image-gradients.json`` with curl."""
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    server = start_server(jobs)
    try:
        cookies = tmp_path / "cookies"

        def curl(*args: str) -> dict:
            done = subprocess.run(["curl", "-s", "-b", str(cookies), "-c", str(cookies), *args],
                                  capture_output=True, text=True, timeout=60)  # fmt: skip
            return json.loads(done.stdout) if done.stdout.startswith("{") else {"raw": done.stdout}

        curl("-X", "POST", f"{server.url}/login", "-F", "username=fred")
        created = curl("-X", "POST", f"{server.url}/datasets/generic/create/image-gradients.json",
                       "-F", "dataset_name=gradients")  # fmt: skip
        assert set(created) == {"id", "name", "status"}, created
        status = poll(lambda: curl(f"{server.url}/datasets/{created['id']}/status"),
                      lambda status: status["status"] in ("Done", "Error"), timeout=60, interval=0.3,
                      what=f"dataset {created['id']}")  # fmt: skip
        assert status == {"status": "Done", "type": "dataset", "name": "gradients", "error": None}
        dataset = curl(f"{server.url}/datasets/{created['id']}.json")
    finally:
        server.stop()
    assert dataset["entries"] == {"train": 1000, "val": 250}
    assert dataset["feature_dims"] == [32, 32, 1] and dataset["label_kind"] == "values"
    assert dataset["label_dims"] == [2] and dataset["extension_id"] == "image-gradients"
    records = read_db(Path(dataset["directory"]) / "val_db")
    slopes = np.array([r.label_values for r in records])
    assert slopes.shape == (250, 2) and np.abs(slopes).max() <= 0.5
    # The image is the gradient its label says: brighter along the slope.
    image = record_image(records[0])[:, :, 0].astype(float)
    x_slope, y_slope = slopes[0]
    assert np.sign(image[:, -1].mean() - image[:, 0].mean()) == np.sign(x_slope) or abs(x_slope) < 0.02
    assert np.sign(image[-1].mean() - image[0].mean()) == np.sign(y_slope) or abs(y_slope) < 0.02


def test_image_gradients_view_plugin(shipped_plugins, restart):
    app, client = restart()
    dataset = created_dataset(client, "image-gradients", dataset_name="g", train_image_count="20",
                              val_image_count="0", image_width="16", image_height="16")  # fmt: skip
    assert dataset["status"] == "Done" and dataset["entries"] == {"train": 20}
    views = {e["id"]: e for e in client.get("/extensions.json").get_json()["view"]["extensions"]}
    assert views["image-gradients"]["origin"].startswith("digits")
    page = client.get(f"/datasets/{dataset['id']}/records?view=image-gradients&arrow_color=blue&arrow_size=50")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert html.count('class="d-flex gap-3 align-items-center gradients-view"') == 12
    assert 'value="blue" selected' in html or "blue" in html


def test_dicom_segmentation_plugin(shipped_plugins, restart, tmp_path):
    study = write_dicom_study(tmp_path / "study")
    app, client = restart()
    page = client.get("/datasets/generic/new/dicom-segmentation")
    assert page.status_code == 200 and 'name="contour_folder"' in page.get_data(as_text=True)
    dataset = created_dataset(
        client, "dicom-segmentation", dataset_name="hearts", image_folder=str(study["images"]),
        contour_folder=str(study["contours"]), resize_width="32", resize_height="32", folder_pct_val="25",
    )  # fmt: skip
    assert dataset["status"] == "Done", dataset["error"]
    assert sum(dataset["entries"].values()) == study["usable"]
    assert dataset["feature_dims"] == [32, 32, 1] and dataset["label_kind"] == "array"
    assert dataset["label_dims"] == [32, 32, 1]
    skipped = {Path(s["path"]).name.removesuffix("-icontour-manual.txt"): s["reason"] for s in dataset["skipped"]}
    assert set(skipped) == set(study["skipped"])
    for stem, reason in study["skipped"].items():
        assert reason in skipped[stem], (stem, skipped[stem])
    assert "JPEG-LS" in skipped["JPEGLS"]
    assert dataset["labels"] == ["background", "left ventricle"]
    assert dataset["extension_userdata"][COLOR_PALETTE_ATTRIBUTE][3:6] == [230, 25, 75]

    records = read_db(Path(dataset["directory"]) / "train_db")
    masks = [record_label(r)[:, :, 0] for r in records]
    images = [record_image(r)[:, :, 0].astype(float) for r in records]
    assert all(set(np.unique(m)) <= {0, 1} for m in masks) and sum(m.sum() > 20 for m in masks) >= len(masks) - 1
    # The contour outlines the bright disk: inside is brighter than outside.
    bright = [img[m == 1].mean() > img[m == 0].mean() for img, m in zip(images, masks, strict=True) if m.any()]
    assert sum(bright) >= len(bright) - 1

    overlays = client.get(f"/datasets/{dataset['id']}/records?db=train")
    html = overlays.get_data(as_text=True)
    assert overlays.status_code == 200 and "Image Segmentation" in html
    assert html.count('class="segmentation-mask') == min(12, dataset["entries"]["train"])
    assert "left ventricle" in html and 'id="segmentation-opacity"' in html


# -- the built-in data extensions ----------------------------------------------------------------------------
def test_image_processing_pairs_by_name(restart, tmp_path):
    inputs, targets = tmp_path / "in", tmp_path / "out"
    for folder in (inputs, targets):
        (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(10):
        clean = rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)
        Image.fromarray(clean).save(targets / "sub" / f"p{i}.jpg")
        Image.fromarray(np.clip(clean + rng.integers(0, 40, clean.shape), 0, 255).astype(np.uint8)).save(
            inputs / "sub" / f"p{i}.png"
        )
    Image.new("RGB", (24, 20)).save(inputs / "lonely.png")
    (inputs / "sub" / "p9.png").write_bytes(b"not a png")
    app, client = restart()
    dataset = created_dataset(client, "image-processing", dataset_name="denoise", feature_folder=str(inputs),
                              label_folder=str(targets), folder_pct_val="20", channel_conversion="RGB",
                              resize_width="12", resize_height="10")  # fmt: skip
    assert dataset["status"] == "Done", dataset["error"]
    assert sum(dataset["entries"].values()) == 9 and len(dataset["skipped"]) == 2
    assert dataset["entries"]["val"] + sum(s["stage"] == "val" for s in dataset["skipped"]) == 2  # 20% of 11 pairs
    assert dataset["feature_dims"] == [10, 12, 3] and dataset["label_dims"] == [10, 12, 3]
    reasons = {Path(s["path"]).name: s["reason"] for s in dataset["skipped"]}
    assert "no target image" in reasons["lonely.png"] and "not an image" in reasons["p9.png"]
    record = read_db(Path(dataset["directory"]) / "val_db")[0]
    assert record_image(record).shape == (10, 12, 3) and record_label(record).shape == (10, 12, 3)

    # The same databases, prebuilt elsewhere: an "Other" dataset made of them.
    directory = Path(dataset["directory"])
    other = client.post("/datasets/images/generic.json", data={"dataset_name": "other", "prebuilt_train_images": str(
        directory / "train_db"), "prebuilt_val_images": str(directory / "val_db")}).get_json()  # fmt: skip
    wait_done(client, other["id"])
    copied = client.get(f"/datasets/{other['id']}.json").get_json()
    assert copied["entries"] == dataset["entries"] and copied["label_kind"] == "array" and copied["has_mean"]
    refused = client.post(
        "/datasets/images/generic.json", data={"dataset_name": "x", "prebuilt_train_images": str(tmp_path)}
    )
    assert refused.status_code == 400 and "not an LMDB" in refused.get_json()["errors"]["prebuilt_train_images"][0]


def test_image_segmentation_palette_and_classes(restart, tmp_path):
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    palette = [0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * (253 * 3)
    for i in range(8):
        Image.fromarray(np.full((16, 16, 3), 30 * i, np.uint8)).save(images / f"s{i}.jpg")
        mask = np.zeros((16, 16), np.uint8)
        mask[2:8, 2:8] = 1
        mask[9:, 9:] = 2
        label = Image.fromarray(mask, mode="P")
        label.putpalette(palette)
        label.save(labels / f"s{i}.png")
    app, client = restart()
    dataset = created_dataset(client, "image-segmentation", dataset_name="seg", feature_folder=str(images),
                              label_folder=str(labels), folder_pct_val="25",
                              class_names="background, red, green")  # fmt: skip
    assert dataset["status"] == "Done", dataset["error"]
    assert dataset["entries"] == {"train": 6, "val": 2} and dataset["label_dims"] == [16, 16, 1]
    assert dataset["labels"] == ["background", "red", "green"]
    assert dataset["extension_userdata"][COLOR_PALETTE_ATTRIBUTE][:9] == palette[:9]
    mask = record_label(read_db(Path(dataset["directory"]) / "train_db")[0])[:, :, 0]
    assert mask[3, 3] == 1 and mask[12, 12] == 2 and mask[0, 15] == 0


# -- the views, on arrays ----------------------------------------------------------------------------------
def view_of(view_id: str):
    return discover_view_extensions().get(view_id)


def test_views_process_data_on_arrays(app):
    image = np.tile(np.arange(0, 240, 15, dtype=np.uint8), (16, 1))
    info = DatasetInfo(id="d", name="d", kind="generic", directory=Path("."), feature_dims=[16, 16, 1],
                       labels=["bg", "disk"],
                       extension_userdata={COLOR_PALETTE_ATTRIBUTE: [0, 0, 0, 0, 0, 255]})  # fmt: skip

    raw = view_of("all-raw-data").cls(info).process_data(0, image, {"scores": np.arange(100.0)})
    assert raw["scores"]["shape"] == [100] and raw["scores"]["truncated"] and raw["scores"]["stats"]["max"] == 99

    output = np.stack([np.full((16, 16), 10.0), np.linspace(0, 1, 256).reshape(16, 16), np.zeros((16, 16))])
    shown = view_of("image-image-output").cls(info, channel_order="bgr", pixel_conversion="clip").process_data(
        1, image, {"out": output}
    )  # fmt: skip
    assert shown["image"].startswith("data:image/png;base64,") and shown["size"] == [16, 16]

    scores = np.zeros((2, 16, 16))
    scores[1, 4:12, 4:12] = 5.0
    segmentation = view_of("image-segmentation").cls(info, colormap="dataset", opacity=40)
    data = segmentation.process_data(2, image, {"scores": scores}, ground_truth=(scores.argmax(0) > 0)[None])
    assert [(item["text"], item["hex_color"]) for item in data["legend"]] == [("bg", "#000000"), ("disk", "#0000ff")]
    assert data["legend"][1]["share"] == 64 / 256 and data["is_binary"] and data["pixel_accuracy"] == 1.0
    from digits.extensions.view.imageSegmentation.view import class_map, overlay, palette_colors

    classes = class_map(scores)
    tinted = np.asarray(overlay(Image.fromarray(image), classes, palette_colors("dataset", [0, 0, 0, 0, 0, 255]), 0.4))
    assert tinted[8, 8, 2] > tinted[8, 8, 0] and tuple(tinted[0, 0]) == (image[0, 0],) * 3
    with pytest.raises(ValueError, match="no palette"):
        view_of("image-segmentation").cls(DatasetInfo("d", "d", "generic", Path("."), [16, 16, 1]), colormap="dataset")

    boxes = view_of("image-bounding-boxes").cls(info, min_confidence=0.5)
    found = boxes.process_data(3, image, {"cars": np.array([[1, 1, 8, 8, 0.9], [2, 2, 4, 4, 0.2], [0, 0, 0, 0, 0]])})
    assert found["bboxes"]["cars"]["boxes"] == [[1.0, 1.0, 8.0, 8.0, 0.9]] and boxes.bbox_count == 1

    with app.test_request_context():
        rendered = render_view(
            view_of("image-segmentation"),
            info,
            {"colormap": "paired", "opacity": 70},
            [(0, image, {"scores": scores}, None), (1, image, {"scores": scores[::-1]}, None)],
        )
        assert len(rendered.items) == 2 and "segmentation-mask" in rendered.items[0]
        assert 'value="70"' in rendered.header and "disk" in rendered.header
