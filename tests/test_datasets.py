"""Image classification datasets through the app: DIGITS' REST session, form errors, bad images, explore."""

from __future__ import annotations

import io
import json
from pathlib import Path

import lmdb
import numpy as np
from helpers import CREATE_DATASET, create_dataset, dataset_fields, post_form, wait_done, wait_for_status
from PIL import Image
from sample_images import write_digits_folder

from digits.records import decode_record, record_key
from digits.web.services import services_of


def test_digits_rest_session(client, digits_folder):
    # 1. log in, the cookie kept by the client
    assert client.post("/login", data={"username": "fred"}).status_code == 302
    # 2. create from a folder
    created = create_dataset(client, digits_folder, folder_pct_val="25")
    assert set(created) == {"id", "name", "status"} and created["name"] == "digits"
    # 3. poll status, read the dataset, list jobs
    status = wait_for_status(client, created["id"])
    assert status == {"status": "Done", "type": "dataset", "name": "digits", "error": None}
    dataset = client.get(f"/datasets/{created['id']}.json").get_json()
    assert dataset["entries"] == {"train": 220, "val": 80}
    assert dataset["image_dimensions"] == [28, 28, 1]
    assert dataset["labels"] == [str(d) for d in range(10)]
    assert dataset["distribution"]["val"] == {str(d): 8 for d in range(10)}
    assert Path(dataset["directory"]).is_dir()
    index = client.get("/index.json").get_json()
    assert "version" in index and [d["id"] for d in index["datasets"]] == [created["id"]]
    assert index["datasets"][0]["status"] == "Done" and index["models"] == []
    # 6. delete
    assert client.delete(f"/datasets/{created['id']}").get_json() == {"id": created["id"], "deleted": True}
    assert client.get(f"/datasets/{created['id']}.json").status_code == 404
    assert not Path(dataset["directory"]).exists()


def test_database_records_and_mean(logged_in, digits_folder):
    created = create_dataset(logged_in, digits_folder, folder_pct_val="0", encoding="none")
    wait_done(logged_in, created["id"])
    directory = Path(logged_in.get(f"/datasets/{created['id']}.json").get_json()["directory"])
    env = lmdb.open(str(directory / "train_db"), readonly=True, lock=False)
    with env.begin() as txn:
        assert txn.stat()["entries"] == 300
        record = decode_record(txn.get(record_key(0)))
    env.close()
    assert (record.format, record.height, record.width, record.channels) == ("raw", 28, 28, 1)
    labels = np.load(directory / "train_db" / "labels.npy")
    assert record.label == labels[0] and np.bincount(labels).tolist() == [30] * 10
    mean = np.load(directory / "mean.npy")
    assert mean.shape == (28, 28, 1) and 0 < mean.mean() < 255
    assert logged_in.get(f"/datasets/{created['id']}/mean.png").mimetype == "image/png"
    assert (directory / "labels.txt").read_text().split() == [str(d) for d in range(10)]
    assert len((directory / "train.txt").read_text().splitlines()) == 300


def test_form_errors_say_what_to_fix(logged_in, tmp_path, digits_folder):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    empty = tmp_path / "empty"
    empty.mkdir()
    one_class = write_digits_folder(tmp_path / "one", per_class=3)
    for extra in [p for p in one_class.iterdir() if p.name != "0"]:
        for image in extra.iterdir():
            image.unlink()
    cases = {
        str(tmp_path / "missing"): "does not exist",
        str(a_file): "is a file, not a folder",
        str(empty): "has no sub-folders",
        str(one_class): "needs at least 2 classes",
    }
    for folder, message in cases.items():
        answer = logged_in.post(CREATE_DATASET, data=dataset_fields(Path(folder)))
        assert answer.status_code == 400
        assert message in answer.get_json()["errors"]["folder_train"][0]
    answer = logged_in.post(CREATE_DATASET, data=dataset_fields(digits_folder, folder_train_min_per_class="31"))
    assert "too few images in 0 (30)" in answer.get_json()["errors"]["folder_train"][0]
    assert logged_in.get("/index.json").get_json()["datasets"] == []


def test_unknown_choices_are_400_with_field_errors(logged_in, digits_folder):
    answer = logged_in.post(
        CREATE_DATASET,
        data=dataset_fields(
            digits_folder, encoding="webp", resize_mode="stretch", resize_channels="4", backend="hdf5", method="s3"
        ),  # fmt: skip
    )
    assert answer.status_code == 400
    errors = answer.get_json()["errors"]
    assert set(errors) == {"encoding", "resize_mode", "resize_channels", "backend", "method"}
    assert errors["encoding"] == ["'webp' is not a valid choice; use one of: png, jpg, none."]


def test_not_logged_in_is_told_how(client, digits_folder):
    answer = client.post(CREATE_DATASET, data=dataset_fields(digits_folder))
    assert answer.status_code == 401 and "POST /login" in answer.get_json()["errors"]
    # A username field no longer identifies anyone (it did in DIGITS): the request stays refused, nothing made.
    assert client.post(CREATE_DATASET, data=dataset_fields(digits_folder, username="script")).status_code == 401
    assert client.get("/index.json").get_json()["datasets"] == []


def write_bad_images(folder: Path) -> dict[str, str]:
    """Images of every awkward kind into class 'odd'; returns file name -> expected fate."""
    odd = folder / "odd"
    odd.mkdir()
    Image.new("L", (40, 30), 128).save(odd / "good.png")
    data = io.BytesIO()
    Image.effect_noise((64, 64), 50).convert("RGB").save(data, format="PNG")
    (odd / "truncated.png").write_bytes(data.getvalue()[: len(data.getvalue()) // 2])
    (odd / "notes.png").write_text("this is not an image")
    Image.fromarray(np.full((20, 20), 40000, dtype=np.uint16)).save(odd / "sixteen.png")
    Image.new("CMYK", (20, 20), (0, 255, 0, 0)).save(odd / "cmyk.jpg")
    frames = [Image.new("P", (20, 20), i) for i in range(3)]
    frames[0].save(odd / "animated.gif", save_all=True, append_images=frames[1:])
    Image.new("1", (20000, 20000)).save(odd / "bomb.png")
    return {
        "good.png": "kept", "sixteen.png": "kept", "cmyk.jpg": "kept", "animated.gif": "kept",
        "truncated.png": "skipped", "notes.png": "skipped", "bomb.png": "skipped",
    }  # fmt: skip


def test_bad_images_are_skipped_with_reasons(logged_in, tmp_path):
    folder = write_digits_folder(tmp_path / "mixed", per_class=5)
    fates = write_bad_images(folder)
    created = create_dataset(logged_in, folder, folder_pct_val="0", resize_channels="3")
    wait_done(logged_in, created["id"])
    dataset = logged_in.get(f"/datasets/{created['id']}.json").get_json()
    skipped = {Path(s["path"]).name: s for s in dataset["skipped"]}
    assert set(skipped) == {name for name, fate in fates.items() if fate == "skipped"}
    assert "megapixel" in skipped["bomb.png"]["reason"]
    assert all(s["reason"] and s["stage"] == "train" for s in skipped.values())
    assert dataset["skipped_counts"]["train"]["odd"] == 3
    assert dataset["distribution"]["train"]["odd"] == 4
    assert dataset["entries"]["train"] == 50 + 4


def test_explore_pages_and_label_filter(logged_in, digits_folder):
    created = create_dataset(logged_in, digits_folder, folder_pct_val="0")
    wait_for_status(logged_in, created["id"])
    page = logged_in.get(f"/datasets/{created['id']}/explore.json?db=train&label=3&size=7&page=1").get_json()
    assert page["total"] == 30 and page["pages"] == 5 and len(page["items"]) == 7
    assert {item["label_name"] for item in page["items"]} == {"3"}
    image = Image.open(io.BytesIO(__import__("base64").b64decode(page["items"][0]["image"].split(",")[1])))
    assert image.size == (28, 28)
    assert logged_in.get(f"/datasets/{created['id']}/explore?db=val").status_code == 404
    html = logged_in.get(f"/datasets/{created['id']}/explore?db=train&label=3")
    assert html.status_code == 200 and b"data:image/png;base64" in html.data


def test_textfile_lists_uploaded_and_local(logged_in, digits_folder, tmp_path):
    lines = [f"{p.relative_to(digits_folder)} {p.parent.name}" for p in sorted(digits_folder.glob("*/*.png"))]
    labels = "\n".join(str(d) for d in range(10)) + "\n"
    fields = dict(
        method="textfile", textfile_train_folder=str(digits_folder), encoding="jpg", resize_channels="3",
        resize_width="16", resize_height="16", dataset_name="from lists", textfile_use_val="1",
        textfile_val_folder=str(digits_folder),
    )  # fmt: skip
    uploaded = dict(
        fields,
        textfile_train_images=(io.BytesIO("\n".join(lines[::2]).encode()), "train.txt"),
        textfile_val_images=(io.BytesIO("\n".join(lines[1::2] + ["missing.png 3"]).encode()), "val.txt"),
        textfile_labels_file=(io.BytesIO(labels.encode()), "labels.txt"),
    )
    created = logged_in.post(CREATE_DATASET, data=uploaded, content_type="multipart/form-data").get_json()
    wait_done(logged_in, created["id"])
    dataset = logged_in.get(f"/datasets/{created['id']}.json").get_json()
    assert dataset["entries"] == {"train": 150, "val": 150}
    assert [Path(s["path"]).name for s in dataset["skipped"]] == ["missing.png"]
    assert dataset["image_dimensions"] == [16, 16, 3]

    (tmp_path / "train.txt").write_text("\n".join(lines))
    (tmp_path / "labels.txt").write_text(labels)
    local = dict(fields, textfile_use_local_files="1", textfile_use_val="0",
                 textfile_local_train_images=str(tmp_path / "train.txt"),
                 textfile_local_labels_file=str(tmp_path / "labels.txt"))  # fmt: skip
    created = post_form(logged_in, CREATE_DATASET, local)
    wait_done(logged_in, created["id"])
    assert logged_in.get(f"/datasets/{created['id']}.json").get_json()["entries"] == {"train": 300}

    missing = dict(local, textfile_local_labels_file=str(tmp_path / "nope.txt"))
    answer = logged_in.post(CREATE_DATASET, data=missing)
    assert answer.status_code == 400 and "is not a file" in answer.get_json()["errors"]["textfile_local_labels_file"][0]


def test_only_the_owner_changes_a_job(client, digits_folder):
    client.post("/login", data={"username": "fred"})
    created = create_dataset(client, digits_folder)
    wait_for_status(client, created["id"])
    answer = client.put(f"/jobs/{created['id']}", json={"name": "renamed", "notes": "first try", "group": "mnist"})
    assert answer.status_code == 200
    dataset = client.get(f"/datasets/{created['id']}.json").get_json()
    assert (dataset["name"], dataset["notes"], dataset["group"]) == ("renamed", "first try", "mnist")
    client.post("/login", data={"username": "alice"})
    assert client.put(f"/jobs/{created['id']}", json={"name": "mine"}).status_code == 403
    assert client.delete(f"/datasets/{created['id']}").status_code == 403
    assert client.post(f"/jobs/{created['id']}/abort").status_code == 403
    assert client.get(f"/datasets/{created['id']}.json").get_json()["name"] == "renamed"


def test_delete_refused_while_a_model_uses_the_dataset(app, logged_in, digits_folder):
    from digits.jobs import Job, new_job_id

    created = create_dataset(logged_in, digits_folder)
    wait_for_status(logged_in, created["id"])
    store = services_of(app).store
    model = Job(id=new_job_id(), type="model", kind="image-classification", name="lenet", username="fred",
                directory="", depends_on_jobs=[created["id"]])  # fmt: skip
    store.add(model)
    answer = logged_in.delete(f"/datasets/{created['id']}")
    assert answer.status_code == 409
    assert answer.get_json()["dependents"] == [{"id": model.id, "name": "lenet", "type": "model"}]
    assert logged_in.get(f"/datasets/{created['id']}.json").status_code == 200


def test_clone_fills_the_form_again(logged_in, digits_folder):
    created = create_dataset(logged_in, digits_folder, resize_mode="crop", folder_pct_test="10", group_name="g1")
    answer = logged_in.get(f"/clone/{created['id']}")
    assert answer.status_code == 302
    page = logged_in.get(answer.headers["Location"]).get_data(as_text=True)
    assert f'value="{digits_folder}"' in page
    assert 'value="crop" selected' in page or '<option selected value="crop">' in page
    assert 'value="g1"' in page


def test_resize_preview(client):
    for mode in ("squash", "crop", "fill", "half_crop"):
        answer = client.get(f"/datasets/images/resize-example?width=64&height=32&mode={mode}&channels=1")
        image = Image.open(io.BytesIO(answer.data))
        assert image.size == (64, 32) and image.mode == "L"
    assert client.get("/datasets/images/resize-example?mode=bogus").status_code == 400


def test_pages_render(logged_in, digits_folder):
    created = create_dataset(logged_in, digits_folder)
    wait_for_status(logged_in, created["id"])
    for url in ("/", "/datasets/images/classification/new", f"/datasets/{created['id']}", "/login"):
        answer = logged_in.get(url)
        assert answer.status_code == 200, url
    assert logged_in.get("/datasets/20000101-000000-0000").status_code == 404
    missing = logged_in.get("/datasets/20000101-000000-0000.json")
    assert missing.status_code == 404 and "No dataset with id" in missing.get_json()["errors"]


def test_job_json_keeps_the_form_and_history(logged_in, digits_folder):
    created = create_dataset(logged_in, digits_folder)
    wait_for_status(logged_in, created["id"])
    directory = Path(logged_in.get(f"/datasets/{created['id']}.json").get_json()["directory"])
    saved = json.loads((directory / "job.json").read_text())
    assert saved["form"]["folder_train"] == str(digits_folder)
    assert saved["status_history"][-1][0] == "Done"


def test_creation_killed_midway_is_an_error_and_offers_no_database(logged_in, tmp_path):
    import os
    import signal
    import time

    import psutil
    from sample_images import write_color_folder

    folder = write_color_folder(tmp_path / "color", classes=2, per_class=400)
    fields = dataset_fields(folder, resize_channels="3", resize_width="224", resize_height="224", folder_pct_val="0")
    created = post_form(logged_in, CREATE_DATASET, fields)
    deadline = time.monotonic() + 60

    def command(process) -> str:
        try:
            return " ".join(process.cmdline())
        except psutil.Error:  # exited (or a zombie) between listing and reading: not the tool we look for
            return ""

    while True:
        tools = [p for p in psutil.Process().children(recursive=True) if "digits.tools.create_db" in command(p)]
        job = logged_in.get(f"/datasets/{created['id']}.json").get_json()
        if tools and job["tasks"][-1]["progress"] > 0:
            break
        assert time.monotonic() < deadline, job
        time.sleep(0.05)
    tool = min(tools, key=lambda p: p.create_time())  # the tool itself, not its workers
    workers = tool.children(recursive=True)
    os.kill(tool.pid, signal.SIGKILL)  # as the kernel's OOM killer would
    status = wait_for_status(logged_in, created["id"])
    assert status["status"] == "Error" and "SIGKILL" in status["error"]
    dataset = logged_in.get(f"/datasets/{created['id']}.json").get_json()
    assert dataset["stages"] == [] and dataset["entries"] == {}
    assert not (Path(dataset["directory"]) / "train_db").exists()
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, "the tool's workers outlived it"


def test_separate_validation_folder(logged_in, digits_folder, tmp_path):
    val = write_digits_folder(tmp_path / "val", per_class=4)
    fields = dataset_fields(digits_folder, has_val_folder="1", folder_val=str(val), folder_pct_val="25")
    created = post_form(logged_in, CREATE_DATASET, fields)
    wait_done(logged_in, created["id"])
    dataset = logged_in.get(f"/datasets/{created['id']}.json").get_json()
    assert dataset["entries"] == {"train": 300, "val": 40}
    bad = logged_in.post(CREATE_DATASET, data=dict(fields, folder_val=str(tmp_path / "nope")))
    assert bad.status_code == 400 and "does not exist" in bad.get_json()["errors"]["folder_val"][0]
