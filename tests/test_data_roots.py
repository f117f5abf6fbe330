"""The data roots: every server path a form takes must lie in them, symlinks followed; the same form with a
path inside the roots is accepted."""

from __future__ import annotations

import io
import os
from pathlib import Path

import lmdb
import numpy as np
import pytest
from helpers import (
    CREATE_DATASET,
    CREATE_MODEL,
    dataset_fields,
    lenet_fields,
    logged_in_client,
    make_dataset,
    train_lenet,
)
from sample_images import write_digits_folder

from digits.data_roots import DataRootsCheck, outside_data_roots
from digits.inference.results import parse_image_list
from digits.records import ImageRecord, encode_record, record_key

CLASSIFY_ONE = "/models/images/classification/classify_one.json"
CLASSIFY_MANY = "/models/images/classification/classify_many.json"
PREBUILT = "/datasets/images/generic.json"


def refused(answer, field: str, path) -> str:
    """The error of ``field`` in a 400 answer, checked to refuse ``path`` by the data roots."""
    assert answer.status_code == 400, answer.get_json()
    message = answer.get_json()["errors"][field][0]
    assert message.startswith(f"{path} is outside the data roots (") and "DIGITS_DATA_ROOTS" in message, message
    return message


@pytest.fixture(scope="module")
def places(tmp_path_factory) -> dict[str, Path]:
    """``data`` (the one data root) and ``outside`` (a sibling), each with a digits folder, list and labels;
    ``link``: a symlink inside the root to the outside digits."""
    base = tmp_path_factory.mktemp("roots")
    places = {}
    for name in ("data", "outside"):
        folder = write_digits_folder(base / name / "digits", per_class=5)
        lines = [f"{path} {path.parent.name}" for path in sorted(folder.glob("*/*.png"))]
        (base / name / "train.txt").write_text("\n".join(lines) + "\n")
        (base / name / "labels.txt").write_text("".join(f"{digit}\n" for digit in range(10)))
        places[name] = base / name
    places["link"] = places["data"] / "link"
    places["link"].symlink_to(places["outside"] / "digits")
    return places


@pytest.fixture(scope="module")
def served(make_module_app, places):
    """An app whose only data roots are ``data`` and its jobs directory; a client, a dataset and a LeNet."""
    jobs = places["data"].parent / "jobs"
    app = make_module_app(jobs, data_roots=[places["data"], jobs])
    client = logged_in_client(app)
    dataset = make_dataset(client, places["data"] / "digits", folder_pct_val="20")
    model = train_lenet(client, dataset)
    return client, dataset, model


def test_outside_data_roots_follows_symlinks_and_compares_whole_names(tmp_path):
    root = tmp_path / "data"
    (root / "in").mkdir(parents=True)
    (tmp_path / "data2").mkdir()
    (root / "escape").symlink_to(tmp_path / "data2")
    assert outside_data_roots(root / "in", [root]) is None
    assert outside_data_roots(root, [root]) is None
    assert outside_data_roots(root / "not-yet" / "x.png", [root]) is None
    for path in (tmp_path / "data2", root / "escape", root / "escape" / "x.png", root / ".." / "data2", "/etc/passwd"):
        assert outside_data_roots(path, [root, tmp_path / "jobs"]) == (
            f"{path} is outside the data roots ({root}, {tmp_path / 'jobs'}); set DIGITS_DATA_ROOTS to allow it."
        )
    assert "outside the data roots (none)" in outside_data_roots(root, [])


def test_one_check_over_a_list_follows_every_link_as_realpath_does(tmp_path):
    # A list's check resolves each folder once; the names in a folder already seen must still have their links
    # followed (out of the root, back in, in a loop), in any order, with the answers of a realpath per path.
    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    (root / "images" / "a.png").write_text("")
    (tmp_path / "secret.png").write_text("")
    (root / "images" / "out.png").symlink_to(tmp_path / "secret.png")
    (root / "images" / "in.png").symlink_to(root / "images" / "a.png")
    (root / "images" / "up").symlink_to(tmp_path)
    (root / "images" / "loop").symlink_to("loop")
    names = ["a.png", "out.png", "in.png", "missing.png", "up/secret.png", "up/data/images/a.png", "loop", "..", ""]
    paths = [f"{root}/images/{name}" for name in names] + [f"{root}/images/{name}/x.png" for name in names]
    top = os.path.realpath(root)

    def inside(path: str) -> bool:
        real = os.path.realpath(path)
        return real == top or real.startswith(top + os.sep)

    check = DataRootsCheck([root])
    assert [check(path) is None for path in paths + paths[::-1]] == [inside(path) for path in paths + paths[::-1]]
    assert check(f"{root}/images/a.png") is None
    assert check(f"{root}/images/out.png") == outside_data_roots(f"{root}/images/out.png", [root]) is not None


def test_a_list_cannot_name_images_elsewhere(tmp_path):
    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    (root / "images" / "up").symlink_to(tmp_path)
    text = "a.png 1\n/etc/shadow 0\n../../secret.png\nup/b.png cat\nb.png 7\n"
    parsed = parse_image_list(text, ["dog", "cat"], str(root / "images"), roots=[root])
    assert parsed.paths == [str(root / "images" / "a.png"), str(root / "images" / "b.png")]
    assert parsed.labels == ["cat", None]
    assert [(p["line"], p["path"]) for p in parsed.problems] == [
        (2, "/etc/shadow"), (3, str(tmp_path / "secret.png")),
        (4, str(root / "images" / "up" / "b.png")), (5, str(root / "images" / "b.png")),
    ]  # fmt: skip
    assert all("outside the data roots" in p["error"] for p in parsed.problems[:3])
    assert "not a class index" in parsed.problems[3]["error"]


def test_dataset_folders(served, places):
    client = served[0]
    outside, link = places["outside"] / "digits", places["link"]
    refused(client.post(CREATE_DATASET, data=dataset_fields(outside)), "folder_train", outside)
    refused(client.post(CREATE_DATASET, data=dataset_fields(link)), "folder_train", link)
    for stage in ("val", "test"):
        fields = dataset_fields(
            places["data"] / "digits", **{f"has_{stage}_folder": "y", f"folder_{stage}": str(outside)}
        )
        refused(client.post(CREATE_DATASET, data=fields), f"folder_{stage}", outside)
        fields[f"folder_{stage}"] = str(places["data"] / "digits")
        assert client.post(CREATE_DATASET, data=fields).status_code == 200
    assert client.post(CREATE_DATASET, data=dataset_fields(places["data"] / "digits")).status_code == 200


def test_built_in_extension_folders(served, places):
    # The built-in data extensions' forms keep to the roots too: their folders are server paths like any other.
    client = served[0]
    inside, outside, link = places["data"] / "digits", places["outside"] / "digits", places["link"]
    create = "/datasets/generic/create/image-processing.json"
    for field in ("feature_folder", "label_folder"):
        for path in (outside, link):
            fields = {"dataset_name": "pairs", "feature_folder": str(inside), "label_folder": str(inside),
                      field: str(path)}  # fmt: skip
            refused(client.post(create, data=fields), field, path)
    fields = {"dataset_name": "pairs", "feature_folder": str(inside), "label_folder": str(inside)}
    assert client.post(create, data=fields).status_code == 200


def test_dataset_local_list_labels_and_folder(served, places):
    client, data = served[0], places["data"]
    fields = dataset_fields(
        data, method="textfile", textfile_use_local_files="y", textfile_local_train_images=str(data / "train.txt"),
        textfile_local_labels_file=str(data / "labels.txt"), textfile_train_folder=str(data),
    )  # fmt: skip
    for field, path in (
        ("textfile_local_labels_file", "/etc/passwd"),
        ("textfile_local_train_images", places["outside"] / "train.txt"),
        ("textfile_train_folder", places["outside"]),
    ):
        refused(client.post(CREATE_DATASET, data={**fields, field: str(path)}), field, path)
    assert client.post(CREATE_DATASET, data=fields).status_code == 200


def write_records(path: Path) -> Path:
    """An LMDB of two 4x4 grayscale DIGITS records, as a prebuilt database."""
    env = lmdb.open(str(path), map_size=1 << 20)
    with env.begin(write=True) as txn:
        for index in range(2):
            pixels = np.full((4, 4, 1), index, np.uint8).tobytes()
            txn.put(record_key(index), encode_record(ImageRecord(pixels, "raw", 4, 4, 1, label=index)))
    env.close()
    return path


def test_prebuilt_databases_and_mean(served, places):
    client = served[0]
    inside, outside = write_records(places["data"] / "train_db"), write_records(places["outside"] / "train_db")
    fields = {"dataset_name": "prebuilt", "prebuilt_train_images": str(inside)}
    for field in ("prebuilt_train_images", "prebuilt_train_labels", "prebuilt_val_images", "prebuilt_val_labels"):
        refused(client.post(PREBUILT, data={**fields, field: str(outside)}), field, outside)
    np.save(places["outside"] / "mean.npy", np.zeros((4, 4, 1), np.float32))
    mean = places["outside"] / "mean.npy"
    refused(client.post(PREBUILT, data={**fields, "prebuilt_mean_file": str(mean)}), "prebuilt_mean_file", mean)
    assert client.post(PREBUILT, data=fields).status_code == 200


def test_custom_network_snapshot(served, places):
    client, dataset, _ = served
    checkpoint = places["outside"] / "weights.ckpt"
    answer = client.post(CREATE_MODEL, data=lenet_fields(dataset, custom_network_snapshot=str(checkpoint)))
    refused(answer, "custom_network_snapshot", checkpoint)
    inside = places["data"] / "weights.ckpt"
    answer = client.post(CREATE_MODEL, data=lenet_fields(dataset, custom_network_snapshot=str(inside)))
    assert answer.status_code == 200, answer.get_json()
    # Accepted is all this checks: the job need not train from a checkpoint that is not there.
    assert client.delete(f"/models/{answer.get_json()['id']}").status_code in (200, 204)


def test_classify_one_image_path(served, places):
    client, _, model = served
    for path in ("/etc/passwd", places["link"] / "3" / "3_0001.png"):
        refused(client.post(CLASSIFY_ONE, data={"job_id": model, "image_path": str(path)}), "image_path", path)
    image = places["data"] / "digits" / "3" / "3_0001.png"
    answer = client.post(CLASSIFY_ONE, data={"job_id": model, "image_path": str(image)})
    assert answer.status_code == 200 and len(answer.get_json()["predictions"]) == 5


def test_classify_many_list_file_folder_and_lines(served, places):
    client, _, model = served
    data, outside = places["data"], places["outside"]
    for field, path in (("image_list_path", "/etc/passwd"), ("image_list_path", outside / "train.txt"),
                        ("image_folder", outside)):  # fmt: skip
        refused(client.post(CLASSIFY_MANY, data={"job_id": model, field: str(path)}), field, path)
    # A list inside the roots naming images elsewhere: those lines are refused, the others classified.
    listed = data / "mixed.txt"
    listed.write_text(f"3/3_0001.png 3\n{outside}/digits/4/4_0001.png 4\n../../outside/digits/5/5_0001.png\n")
    answer = client.post(CLASSIFY_MANY, data={"job_id": model, "image_list_path": str(listed),
                                              "image_folder": str(data / "digits")})  # fmt: skip
    assert answer.status_code == 200, answer.get_json()
    result = answer.get_json()
    assert list(result["classifications"]) == [str(data / "digits" / "3" / "3_0001.png")]
    errors = result["errors"]
    assert [e["path"] for e in errors] == [f"{outside}/digits/4/4_0001.png", f"{outside}/digits/5/5_0001.png"]
    assert all("outside the data roots" in e["error"] for e in errors)
    upload = (io.BytesIO(listed.read_bytes()), "mixed.txt")
    uploaded = client.post(
        CLASSIFY_MANY, data={"job_id": model, "image_list": upload, "image_folder": str(data / "digits")}
    )
    assert uploaded.get_json()["errors"] == errors


def test_live_server_roots_cover_the_test_folders(tmp_path):
    from server import LiveServer

    roots = LiveServer(tmp_path / "jobs").env["DIGITS_DATA_ROOTS"].split(os.pathsep)
    assert str(tmp_path / "jobs") in roots and any(str(tmp_path).startswith(root) for root in roots)
