"""Bounds on what one request may cause: folder checks, sweeps, exports, Visualize, inference, body sizes,
archives and images; each answered as promised (a clear 4xx, or 503 with Retry-After), nothing half-created."""

from __future__ import annotations

import io
import os
import struct
import tarfile
import threading
import time
import zipfile
import zlib
from contextlib import ExitStack
from pathlib import Path

import pytest
from helpers import make_dataset
from PIL import Image

from digits.datasets.image_classification import check_class_folder
from digits.jobs.store import STAGING_PREFIX
from digits.tools import parse_folder
from digits.web.limits import KEY as LIMITS_KEY
from digits.web.services import services_of

CLASSIFY_ONE = "/models/images/classification/classify_one.json"
CREATE_MODEL = "/models/images/classification.json"


def write_png(path: Path, value: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (8, 8), value).save(path)
    return path


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height``: header and a token of data (readers refuse it from the header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def app(make_module_app):
    return make_module_app(inference_wait=0.2)


@pytest.fixture(scope="module")
def client(app):
    client = app.test_client()
    client.post("/login", data={"username": "fred"})
    return client


def upload_pretrained(client, data_bytes: int = 64, **changes):
    """POST a pretrained model made of files (a checkpoint's bytes need not be real to be stored)."""
    fields = {
        "weights_file": [(io.BytesIO(b"i" * 64), "model.ckpt.index"),
                         (io.BytesIO(b"d" * data_bytes), "model.ckpt.data-00000-of-00001")],
        "model_def_file": (io.BytesIO(b"class UserModel(Tower):\n    pass\n"), "network.py"),
        "labels_file": (io.BytesIO(b"zero\none\n"), "labels.txt"),
        "image_type": "1", "width": "28", "height": "28", "resize_mode": "squash", "job_name": "limits",
    }  # fmt: skip
    fields.update(changes)
    return client.post("/pretrained_models/upload.json", data=fields)


@pytest.fixture(scope="module")
def pretrained(client):
    """A pretrained model whose upload (a 2 MiB checkpoint) is over the form limit and within the upload limit."""
    answer = upload_pretrained(client, data_bytes=2 << 20)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["id"]


def pretrained_ids(client) -> set[str]:
    return {j["id"] for j in client.get("/index.json").get_json()["pretrained_models"]}


def no_staging_left(app) -> bool:
    return not list(services_of(app).config.jobs_dir.glob(STAGING_PREFIX + "*"))


# -- folder checks ------------------------------------------------------------------------------------


def test_links_out_of_the_folder_and_loops_are_not_followed(tmp_path):
    top = tmp_path / "train"
    for name in ("a", "b"):
        for i in range(3):
            write_png(top / name / f"{i}.png")
    outside = write_png(tmp_path / "elsewhere" / "x.png").parent
    os.symlink("/proc", top / "a" / "proc")
    os.symlink(top, top / "a" / "loop")  # inside the folder, but a loop
    os.symlink(outside, top / "a" / "out")
    os.symlink(outside / "x.png", top / "b" / "x.png")
    os.symlink("/proc", top / "proc")  # a "class" that is a link out
    os.symlink(top / "b", top / "c")  # a class that is a link inside: kept
    started = time.monotonic()
    assert parse_folder.find_classes(str(top)) == ["a", "b", "c"]
    images = parse_folder.find_images(str(top / "a"), top=str(top))
    assert all("/proc/" not in p and "/out/" not in p for p in images)
    # a's own three, and b's and c's images reached once each through the loop
    assert len([p for p in images if p.startswith(str(top / "a") + "/") and p.count("/loop/") == 0]) == 3
    assert check_class_folder(str(top), 2, 2) is None
    out_dir = tmp_path / "lists"
    assert parse_folder.main([str(top), "--out-dir", str(out_dir)]) == 0
    listed = (out_dir / "train.txt").read_text()
    assert "elsewhere" not in listed and "/proc/" not in listed
    assert time.monotonic() - started < 10


def test_the_form_check_stops_at_its_budget_and_leaves_the_rest_to_the_parse_task(tmp_path):
    top = tmp_path / "many"
    for name in ("a", "b"):
        (top / name).mkdir(parents=True)
        for i in range(200):
            (top / name / f"{i}.txt").write_text("not an image")
    note = check_class_folder(str(top), 2, 2, max_entries=50)
    assert note and "first 50 entries" in note and "parse task" in note
    with pytest.raises(Exception, match="No images found"):
        check_class_folder(str(top), 2, 2)


def test_a_class_folder_linking_to_proc_answers_quickly(client, tmp_path):
    top = tmp_path / "proc-train"
    for name in ("a", "b"):
        write_png(top / name / "0.png")
    os.symlink("/proc", top / "a" / "proc")
    os.symlink(top, top / "b" / "loop")
    started = time.monotonic()
    answer = client.post("/datasets/images/classification.json", data={
        "dataset_name": "proc", "method": "folder", "folder_train": str(top), "folder_train_min_per_class": "2",
        "resize_width": "8", "resize_height": "8", "resize_channels": "1",
    })  # fmt: skip
    assert time.monotonic() - started < 5
    assert answer.status_code == 400
    assert "found 0" in str(answer.get_json()["errors"]["folder_train"])


# -- sweeps -------------------------------------------------------------------------------------------------


def test_a_sweep_past_the_cap_is_a_form_error_and_creates_nothing(client, tmp_path):
    folder = tmp_path / "tiny"
    for name, value in (("dark", 0), ("light", 255)):
        for i in range(3):
            write_png(folder / name / f"{i}.png", value)
    dataset = make_dataset(client, folder, resize_width="8", resize_height="8", resize_channels="1",
                           folder_pct_val="0", folder_train_min_per_class="2")  # fmt: skip
    models_before = client.get("/index.json").get_json()["models"]
    rates = ",".join(f"0.{i:03d}" for i in range(1, 66))
    answer = client.post(CREATE_MODEL, data={
        "dataset": dataset, "model_name": "sweep", "method": "standard", "standard_networks": "lenet",
        "learning_rate": rates, "batch_size": "1", "train_epochs": "1",
    })  # fmt: skip
    assert answer.status_code == 400, answer.get_json()
    message = answer.get_json()["errors"]["learning_rate"][0]
    assert "make 65 jobs" in message and "64" in message and "DIGITS_MAX_SWEEP" in message
    assert client.get("/index.json").get_json()["models"] == models_before


# -- work a few at a time ------------------------------------------------------------------------------------


def hold(stack: ExitStack, slots) -> None:
    for _ in range(slots.size):
        stack.enter_context(slots.take())


def test_visualize_past_the_cap_is_503_with_retry_after(app, client):
    limits = app.extensions[LIMITS_KEY]
    with ExitStack() as stack:
        hold(stack, limits.visualizations)
        network = "class UserModel(Tower):\n    pass\n"
        fields = {"custom_network": network, "input_shape": "28,28,1"}
        answer = client.post("/models/visualize-network.json", data=fields)
    assert answer.status_code == 503
    assert int(answer.headers["Retry-After"]) > 0
    assert "DIGITS_MAX_VISUALIZATIONS" in answer.get_json()["errors"]


def test_export_past_the_cap_is_503_with_retry_after(app, client, pretrained):
    limits = app.extensions[LIMITS_KEY]
    with ExitStack() as stack:
        hold(stack, limits.exports)
        answer = client.post(f"/pretrained_models/{pretrained}/export.zip")
        page = client.post(f"/pretrained_models/{pretrained}/export.zip", headers={"Accept": "text/html"})
    assert answer.status_code == 503 and int(answer.headers["Retry-After"]) > 0
    assert "2 exports are running already" in answer.get_json()["errors"]
    assert page.status_code == 503 and b"DIGITS_MAX_EXPORTS" in page.data
    assert not list((services_of(app).config.jobs_dir / pretrained / "exports").glob(".export-*"))


def test_inference_waits_a_bounded_time_for_the_busy_worker(app, client, pretrained):
    worker = services_of(app).inference.workers["tensorflow"]  # the pretrained model is a TensorFlow one
    image = io.BytesIO()
    Image.new("L", (28, 28)).save(image, format="PNG")
    answers = []

    def classify():
        data = {"job_id": pretrained, "image_file": (io.BytesIO(image.getvalue()), "x.png")}
        answers.append(client.post(CLASSIFY_ONE, data=data))

    with worker._lock:  # another request holds the worker
        started = time.monotonic()
        thread = threading.Thread(target=classify)
        thread.start()
        thread.join(10)
        waited = time.monotonic() - started
    assert answers and answers[0].status_code == 503
    assert 0.2 <= waited < 5
    assert "Retry-After" in answers[0].headers and "DIGITS_INFERENCE_WAIT" in answers[0].get_json()["errors"]


# -- body sizes -------------------------------------------------------------------------------------------------


def test_a_large_json_edit_is_413_while_an_upload_route_takes_it(client, pretrained):
    answer = client.put(f"/jobs/{pretrained}", json={"name": "x" * (2 << 20)})
    assert answer.status_code == 413
    message = answer.get_json()["errors"]
    assert "at most 1 MiB" in message and "DIGITS_MAX_FORM_MB" in message
    shown = client.get(f"/pretrained_models/{pretrained}.json").get_json()
    assert shown["name"] == "limits"  # the 2 MiB upload of the fixture was taken; the edit was not


# -- archives and images ---------------------------------------------------------------------------------------


def test_archive_bombs_are_refused_with_the_reason(app, client):
    many = io.BytesIO()
    with tarfile.open(fileobj=many, mode="w:gz") as tar:
        for i in range(10_001):
            tar.addfile(tarfile.TarInfo(f"f{i}"), io.BytesIO(b""))
    dense = io.BytesIO()
    with zipfile.ZipFile(dense, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("info.json", "{}")
        archive.writestr("zeros.data", b"\0" * (8 << 20))
    before = pretrained_ids(client)
    for data, reason in ((many, "more than 10,000 members"), (dense, "more than 20 times its own size")):
        answer = client.post("/pretrained_models/upload_archive.json",
                             data={"archive": (io.BytesIO(data.getvalue()), "bomb.tgz")})  # fmt: skip
        assert answer.status_code == 400
        assert reason in answer.get_json()["errors"]["archive"][0]
    assert pretrained_ids(client) == before and no_staging_left(app)


def test_decompression_bomb_images_are_refused_from_their_header(app, client, pretrained):
    for width, height in ((10_000, 10_000), (30_000, 30_000)):  # over the limit; over twice Pillow's
        bomb = png_header(width, height)
        answer = client.post(CLASSIFY_ONE, data={"job_id": pretrained, "image_file": (io.BytesIO(bomb), "bomb.png")})
        assert answer.status_code == 400
        assert "megapixel limit" in answer.get_json()["errors"]["image_file"][0]
    before = pretrained_ids(client)
    mean = upload_pretrained(client, mean_file=(io.BytesIO(png_header(10_000, 10_000)), "mean.png"))
    assert mean.status_code == 400 and "megapixel limit" in str(mean.get_json()["errors"])
    assert pretrained_ids(client) == before and no_staging_left(app)
