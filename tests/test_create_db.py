"""The dataset tools: parse_folder splits a folder of classes, create_db writes the LMDB."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import lmdb
import numpy as np
import pytest
from PIL import Image

from digits.records import decode_record, record_key

REPO = Path(__file__).resolve().parent.parent


def run_tool(module: str, *args) -> tuple[int, list[dict], str]:
    """Run ``python -m module args``; returns (exit status, protocol events, stderr)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True, env=env, cwd=REPO, timeout=60
    )
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    return proc.returncode, events, proc.stderr


def events_of(events: list[dict], kind: str) -> list[dict]:
    return [e for e in events if e["event"] == kind]


def make_folder(root: Path, counts: dict[str, int], size=(40, 30)) -> Path:
    rng = np.random.default_rng(0)
    for index, (name, count) in enumerate(counts.items()):
        for i in range(count):
            # Half the images in a nested folder, all with a space in the name.
            folder = root / name / ("nested" if i % 2 else "")
            folder.mkdir(parents=True, exist_ok=True)
            noise = rng.integers(0, 10, (size[1], size[0], 3), np.uint8)
            pixels = np.full((size[1], size[0], 3), index * 40, np.uint8) + noise
            Image.fromarray(pixels).save(folder / f"image {i}.{'png' if i % 3 else 'JPG'}")
    return root


def read_list(path: Path) -> list[tuple[str, int]]:
    return [(line.rsplit(" ", 1)[0], int(line.rsplit(" ", 1)[1])) for line in path.read_text().splitlines()]


def test_parse_folder_splits_every_class(tmp_path):
    src = make_folder(tmp_path / "src", {"cat": 20, "Bird": 10, "dog": 40, "rare": 2})
    (src / "cat" / ".hidden.png").write_bytes(b"")
    (src / "cat" / "notes.txt").write_text("not an image")
    out = tmp_path / "lists"
    status, events, stderr = run_tool(
        "digits.tools.parse_folder", src, "--out-dir", out, "--pct-val", 20, "--pct-test", 10,
        "--min-per-class", 5, "--max-per-class", 30, "--seed", 3,
    )  # fmt: skip
    assert status == 0, stderr
    assert events_of(events, "progress")
    result = events_of(events, "result")[0]
    assert result["labels"] == ["Bird", "cat", "dog"] == (out / "labels.txt").read_text().split("\n")[:-1]
    assert result["dropped_classes"] == [{"name": "rare", "count": 2, "reason": result["dropped_classes"][0]["reason"]}]
    stages = result["stages"]
    assert stages["train"]["distribution"] == {"Bird": 7, "cat": 14, "dog": 21}
    assert stages["val"]["distribution"] == {"Bird": 2, "cat": 4, "dog": 6}
    assert stages["test"]["distribution"] == {"Bird": 1, "cat": 2, "dog": 3}
    seen = set()
    for stage in ("train", "val", "test"):
        entries = read_list(out / f"{stage}.txt")
        assert len(entries) == stages[stage]["entries"]
        for path, label in entries:
            assert os.path.isabs(path) and os.path.exists(path)
            assert Path(path).relative_to(src).parts[0] == result["labels"][label]
        seen.update(path for path, _ in entries)
    assert len(seen) == 60  # no image in two stages, dog subsampled to 30


def test_parse_folder_separate_val_folder(tmp_path):
    src = make_folder(tmp_path / "train", {"a": 4, "b": 4})
    val = make_folder(tmp_path / "val", {"a": 2, "b": 3, "unknown": 2})
    out = tmp_path / "lists"
    status, events, stderr = run_tool("digits.tools.parse_folder", src, "--out-dir", out, "--val-folder", val)
    assert status == 0, stderr
    result = events_of(events, "result")[0]
    assert result["stages"]["val"]["distribution"] == {"a": 2, "b": 3}
    assert [d["name"] for d in result["dropped_classes"]] == ["unknown"]
    assert not (out / "test.txt").exists()


def test_parse_folder_needs_two_classes(tmp_path):
    src = make_folder(tmp_path / "src", {"only": 5, "few": 1})
    status, events, _ = run_tool("digits.tools.parse_folder", src, "--out-dir", tmp_path / "lists")
    assert status == 1
    assert "at least 2 classes" in events_of(events, "error")[0]["message"]


@pytest.fixture
def dataset(tmp_path):
    """A list file of 24 good images over 3 classes, plus four bad ones of class 1."""
    src = make_folder(tmp_path / "src", {"red": 8, "green": 8, "blue": 8}, size=(48, 32))
    lines = [f"{p} {i}" for i, name in enumerate(["red", "green", "blue"]) for p in sorted((src / name).rglob("*.*"))]
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "text.png").write_text("hello")
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(buffer, "JPEG")
    (bad / "truncated.jpg").write_bytes(buffer.getvalue()[:300])
    Image.new("1", (20000, 20000)).save(bad / "bomb.png")
    lines += [f"{bad / name} 1" for name in ("text.png", "truncated.jpg", "bomb.png", "missing.png")]
    (tmp_path / "train.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "labels.txt").write_text("red\ngreen\nblue\n")
    return tmp_path


def test_create_db_writes_decodable_records(dataset):
    db = dataset / "db" / "train"
    status, events, stderr = run_tool(
        "digits.tools.create_db", "--list", dataset / "train.txt", "--labels", dataset / "labels.txt",
        "--db", db, "--width", 24, "--height", 20, "--channels", 3, "--resize-mode", "crop",
        "--encoding", "png", "--mean", dataset / "db" / "mean.npy", "--workers", 2, "--seed", 1,
        "--initial-map-size", 16384,
    )  # fmt: skip
    assert status == 0, stderr
    assert "growing" in stderr  # the 16 KiB map had to grow
    assert events_of(events, "progress")[-1] == {"event": "progress", "done": 28, "total": 28}
    skipped = events_of(events, "skipped")
    assert {Path(e["path"]).name for e in skipped} == {"text.png", "truncated.jpg", "bomb.png", "missing.png"}
    assert {e["label"] for e in skipped} == {"green"} and all(e["reason"] for e in skipped)
    result = events_of(events, "result")[0]
    assert result["entries"] == 24
    assert result["distribution"] == {"red": 8, "green": 8, "blue": 8}
    assert result["skipped"] == {"green": 4}
    assert result["image_dimensions"] == [20, 24, 3] and result["encoding"] == "png"
    assert not (dataset / "db" / "train.partial").exists()

    labels = np.load(db / "labels.npy")
    assert labels.dtype == np.int32 and labels.shape == (24,)
    with lmdb.open(str(db), readonly=True, lock=False) as env, env.begin() as txn:
        assert env.stat()["entries"] == 24
        for i in range(24):
            record = decode_record(txn.get(record_key(i)))
            assert (record.height, record.width, record.channels, record.format) == (20, 24, 3, "png")
            assert record.label == labels[i]
            pixels = np.asarray(Image.open(io.BytesIO(record.encoded)))
            assert pixels.shape == (20, 24, 3)
            assert abs(int(pixels[10, 12, 0]) - 40 * record.label) < 12  # each class has its own gray level
    mean = np.load(dataset / "db" / "mean.npy")
    assert mean.shape == (20, 24, 3) and mean.dtype == np.float32
    assert 35 < mean.mean() < 50  # average of 0, 40 and 80 plus noise
    assert Image.open(dataset / "db" / "mean.png").size == (24, 20)


def test_create_db_grayscale_raw_in_one_process(dataset):
    db = dataset / "gray"
    status, events, stderr = run_tool(
        "digits.tools.create_db", "--list", dataset / "train.txt", "--db", db, "--width", 16, "--height", 16,
        "--channels", 1, "--encoding", "none", "--workers", 1, "--no-shuffle",
    )  # fmt: skip
    assert status == 0, stderr
    result = events_of(events, "result")[0]
    assert result["distribution"] == {"0": 8, "1": 8, "2": 8} and result["skipped"] == {"1": 4}
    with lmdb.open(str(db), readonly=True, lock=False) as env, env.begin() as txn:
        record = decode_record(txn.get(record_key(0)))
    assert record.format == "raw" and len(record.encoded) == 16 * 16 and record.label == 0


def test_create_db_failure_leaves_no_database(tmp_path):
    (tmp_path / "bad.png").write_text("nope")
    (tmp_path / "list.txt").write_text(f"{tmp_path / 'bad.png'} 0\n{tmp_path / 'gone.jpg'} 1\n")
    db = tmp_path / "db"
    (tmp_path / "db.partial").mkdir()  # left behind by a killed run
    status, events, _ = run_tool(
        "digits.tools.create_db", "--list", tmp_path / "list.txt", "--db", db, "--width", 8, "--height", 8
    )
    assert status == 1
    assert len(events_of(events, "skipped")) == 2
    assert "could be read" in events_of(events, "error")[0]["message"]
    assert not db.exists() and not (tmp_path / "db.partial").exists()


def test_create_db_stores_a_png_of_the_right_shape_as_it_is(tmp_path):
    for i in range(2):
        Image.new("L", (16, 12), 50 * i).save(tmp_path / f"{i}.png")
    (tmp_path / "list.txt").write_text(f"{tmp_path / '0.png'} 0\n{tmp_path / '1.png'} 1\n")
    status, _, stderr = run_tool(
        "digits.tools.create_db", "--list", tmp_path / "list.txt", "--db", tmp_path / "db",
        "--width", 16, "--height", 12, "--channels", 1, "--encoding", "png", "--no-shuffle",
    )  # fmt: skip
    assert status == 0, stderr
    with lmdb.open(str(tmp_path / "db"), readonly=True, lock=False) as env, env.begin() as txn:
        for i in range(2):
            assert decode_record(txn.get(record_key(i))).encoded == (tmp_path / f"{i}.png").read_bytes()
