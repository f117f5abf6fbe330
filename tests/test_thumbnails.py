"""Thumbnails for the result pages: image files in the data roots only, bounded, cached by the browser too."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from helpers import logged_in_client, make_dataset
from PIL import Image

from digits.web.services import services_of


@pytest.fixture
def roots_app(make_app, tmp_path):
    """An app whose only data root is ``tmp_path / "data"``, holding a 300x200 photo."""
    data = tmp_path / "data"
    data.mkdir()
    Image.new("RGB", (300, 200), (200, 30, 30)).save(data / "photo.png")
    return make_app(data_roots=[data]), data


def thumbnail(client, path, **query):
    return client.get("/thumbnails", query_string={"path": str(path), **query})


def test_an_image_in_the_roots_is_shrunk_and_cached_by_the_browser(roots_app):
    app, data = roots_app
    client = logged_in_client(app)
    answer = thumbnail(client, data / "photo.png", size=64)
    assert answer.status_code == 200 and answer.mimetype == "image/png"
    assert Image.open(io.BytesIO(answer.data)).size == (64, 43)  # its shape kept
    assert "private" in answer.headers["Cache-Control"] and answer.headers["Last-Modified"]
    again = client.get(answer.request.url, headers={"If-None-Match": answer.headers["ETag"]})
    assert again.status_code == 304 and not again.data
    huge = thumbnail(client, data / "photo.png", size=100000)
    assert max(Image.open(io.BytesIO(huge.data)).size) == 256


def test_nothing_outside_the_roots_nor_anything_but_images(make_app, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "notes.txt").write_text("secret")
    (data / "passwd.png").symlink_to("/etc/passwd")
    (data / "fake.png").write_text("not an image")
    client = make_app(data_roots=[data]).test_client()
    for path, status in [
        ("/etc/passwd", 403),
        (f"{data}/../../../../etc/passwd", 403),
        (data / "passwd.png", 403),  # a link out of the roots
        (data / "notes.txt", 403),  # not an image file
        (data / "missing.png", 404),
        (data / "fake.png", 415),
        ("photo.png", 400),  # relative: from where?
    ]:
        answer = thumbnail(client, path)
        assert answer.status_code == status, (path, answer.status_code)
        assert b"secret" not in answer.data and b"root:" not in answer.data


def test_a_dataset_record_is_pictured(make_app, digits_folder):
    app = make_app()
    client = logged_in_client(app)
    dataset = make_dataset(client, digits_folder, folder_pct_val="20")
    answer = client.get(f"/datasets/{dataset}/records/val/0.png?size=32")
    assert answer.status_code == 200 and Image.open(io.BytesIO(answer.data)).size == (28, 28)  # never enlarged
    directory = Path(services_of(app).store.get(dataset).directory)
    sources = (directory / "val_db" / "sources.txt").read_text().splitlines()
    assert len(sources) == 60 and all(os.path.isfile(s) for s in sources)  # the file each record came from
    assert client.get(f"/datasets/{dataset}/records/val/60.png").status_code == 404
    assert client.get(f"/datasets/{dataset}/records/test/0.png").status_code == 404
    assert client.get(f"/datasets/{dataset}/records/..%2Fjob.json/0.png").status_code == 404
