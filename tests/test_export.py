"""Download, export and pretrained models: archives, a SavedModel used without DIGITS, uploads, training from one."""

from __future__ import annotations

import importlib.util
import io
import json
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
from helpers import CREATE_MODEL, logged_in_client, make_dataset, post_form, train_lenet, wait_done
from sample_images import write_digits_folder

from digits.jobs.store import STAGING_PREFIX
from digits.web.services import services_of

pytestmark = pytest.mark.slow

CLASSIFY_ONE = "/models/images/classification/classify_one.json"
CLASSIFY_MANY = "/models/images/classification/classify_many.json"
EPOCHS = 3


@pytest.fixture(scope="module")
def trained(make_module_app, tmp_path_factory):
    """An app with a LeNet trained for 3 epochs on 30 digits per class, and 10 held-out digits per class."""
    root = tmp_path_factory.mktemp("export")
    train = write_digits_folder(root / "train", per_class=30)
    held_out = write_digits_folder(root / "held-out", per_class=10, skip=30)
    app = make_module_app(root / "jobs")
    client = logged_in_client(app)
    dataset = make_dataset(client, train, folder_pct_val="20")
    model = train_lenet(client, dataset, train_epochs=str(EPOCHS), batch_size="16", learning_rate="0.02",
                        lr_policy="fixed", random_seed="3")  # fmt: skip
    return app, client, model, dataset, held_out


def jobs_dir(app) -> Path:
    return services_of(app).config.jobs_dir


def pretrained_ids(client) -> set[str]:
    return {j["id"] for j in client.get("/index.json").get_json()["pretrained_models"]}


def archive_names(data: bytes, fmt: str) -> list[str]:
    if fmt == "zip":
        return zipfile.ZipFile(io.BytesIO(data)).namelist()
    return tarfile.open(fileobj=io.BytesIO(data), mode="r:*").getnames()


def read_member(data: bytes, fmt: str, name: str) -> bytes:
    if fmt == "zip":
        return zipfile.ZipFile(io.BytesIO(data)).read(name)
    return tarfile.open(fileobj=io.BytesIO(data), mode="r:*").extractfile(name).read()


def download(client, model: str, suffix: str = ".zip", **params) -> bytes:
    answer = client.get(f"/models/{model}/download{suffix}", query_string=params)
    assert answer.status_code == 200, answer.get_data(as_text=True)[:300]
    assert "attachment" in answer.headers["Content-Disposition"]
    return answer.get_data()


@pytest.mark.parametrize(("suffix", "fmt"), [(".tar", "tar"), (".tar.gz", "tar.gz"), (".zip", "zip"), ("", "tar.gz")])
def test_download_each_format(trained, suffix, fmt):
    _, client, model, _, _ = trained
    data = download(client, model, suffix)
    names = archive_names(data, fmt)
    last = f"snapshot_{float(EPOCHS)}.ckpt"
    assert sorted(names) == sorted(
        ["info.json", "network.py", "labels.txt", "mean.npy", f"{last}.index", f"{last}.data-00000-of-00001"]
    )
    assert all(not n.startswith("/") and ".." not in n.split("/") for n in names)
    info = json.loads(read_member(data, fmt, "info.json"))
    assert info["checkpoint"] == last and info["network"] == "network.py" and info["mean"] == "mean.npy"
    assert info["labels"] == list("0123456789") and info["image_shape"] == [28, 28, 1]
    assert info["framework"] == "tensorflow" and info["digits_version"] and info["job_id"] == model
    assert info["job_name"] == "lenet" and info["dataset_name"] == "digits" and info["snapshot_epoch"] == EPOCHS
    assert read_member(data, fmt, "labels.txt").decode().split() == list("0123456789")
    assert "class UserModel" in read_member(data, fmt, "network.py").decode()


def test_download_a_chosen_snapshot_and_refusals(trained):
    _, client, model, _, _ = trained
    names = archive_names(download(client, model, ".tar", snapshot_epoch="2"), "tar")
    assert "snapshot_2.0.ckpt.index" in names
    missing = client.get(f"/models/{model}/download.zip?snapshot_epoch=42")
    assert missing.status_code == 400 and "no snapshot at epoch 42" in missing.get_json()["errors"]
    assert client.get(f"/models/{model}/download.rar").status_code == 404


SERVE = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf
    from PIL import Image

    model_dir, list_file = sys.argv[1], sys.argv[2]
    info = json.load(open(model_dir + "/info.json"))
    height, width, channels = info["input"]["shape"][1:]
    labels = open(model_dir + "/labels.txt").read().splitlines()
    paths = open(list_file).read().split()
    mode = "L" if channels == 1 else "RGB"
    images = np.stack([
        np.asarray(Image.open(p).convert(mode).resize((width, height)), np.uint8).reshape(height, width, channels)
        for p in paths
    ])
    serve = tf.saved_model.load(model_dir).signatures["serving_default"]
    answer = serve(images=tf.constant(images))
    probabilities = answer["probabilities"].numpy()
    print(json.dumps({
        "top1": [labels[i] for i in answer["classes"].numpy().tolist()],
        "sums": probabilities.sum(axis=1).tolist(),
        "digits_imported": sorted(m for m in sys.modules if m == "digits" or m.startswith("digits.")),
    }))
    """
)


def unzip(data: bytes, dest: Path) -> Path:
    zipfile.ZipFile(io.BytesIO(data)).extractall(dest)
    return dest


def test_savedmodel_predicts_like_the_app_without_it(trained, tmp_path):
    _, client, model, _, held_out = trained
    answer = client.post(f"/models/{model}/export.zip?format=savedmodel")
    assert answer.status_code == 200, answer.get_data(as_text=True)[:500]
    exported = unzip(answer.get_data(), tmp_path / "saved")
    assert (exported / "saved_model.pb").is_file() and (exported / "variables").is_dir()
    assert (exported / "labels.txt").read_text().split() == list("0123456789")
    info = json.loads((exported / "info.json").read_text())
    assert info["input"] == {"name": "images", "dtype": "uint8", "shape": [None, 28, 28, 1]}
    assert set(info["outputs"]) == {"probabilities", "classes"}

    paths = [str(p) for p in sorted(held_out.glob("*/*.png"))]
    assert len(paths) == 100
    (tmp_path / "list.txt").write_text("\n".join(paths) + "\n")
    script = tmp_path / "serve.py"
    script.write_text(SERVE)
    run = subprocess.run([sys.executable, "-I", str(script), str(exported), str(tmp_path / "list.txt")],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    served = json.loads(run.stdout.strip().splitlines()[-1])
    assert served["digits_imported"] == []
    assert np.allclose(served["sums"], 1.0, atol=1e-4)

    image_list = (io.BytesIO("\n".join(paths).encode()), "list.txt")
    listed = client.post(CLASSIFY_MANY, data={"job_id": model, "image_list": image_list})
    assert listed.status_code == 200, listed.get_json()
    app_top1 = [listed.get_json()["classifications"][p][0][0] for p in paths]
    assert served["top1"] == app_top1

    again = client.post(f"/models/{model}/export.zip")  # made once, kept in the job directory
    assert again.status_code == 200 and zipfile.ZipFile(io.BytesIO(again.get_data())).testzip() is None


def test_onnx_export(trained, tmp_path):
    app, client, model, _, held_out = trained
    if importlib.util.find_spec("tf2onnx") is None:
        refused = client.post(f"/models/{model}/export.zip?format=onnx")
        assert refused.status_code == 501 and "tf2onnx" in refused.get_json()["errors"]
        return
    answer = client.post(f"/models/{model}/export.zip?format=onnx&snapshot_epoch=2")
    assert answer.status_code == 200, answer.get_data(as_text=True)[:500]
    exported = unzip(answer.get_data(), tmp_path / "onnx")
    assert {p.name for p in exported.iterdir()} == {"model.onnx", "labels.txt", "info.json"}
    info = json.loads((exported / "info.json").read_text())
    assert info["format"] == "onnx" and info["input"]["name"] == "input:0" and info["snapshot_epoch"] == 2
    assert client.post(f"/models/{model}/export.zip?format=keras").status_code == 400


def test_export_tool_by_hand_on_an_unpacked_archive(trained, tmp_path):
    _, client, model, _, _ = trained
    unpacked = unzip(download(client, model, ".zip", snapshot_epoch="1"), tmp_path / "archive")
    run = subprocess.run(
        [sys.executable, "-m", "digits.tools.tensorflow.export", "--spec", "info.json", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300, cwd=unpacked,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["event"] == "result" and result["export"]["checked_difference"] < 1e-4
    assert (tmp_path / "out" / "saved_model.pb").is_file() and (tmp_path / "out" / "labels.txt").is_file()


def same_predictions(first: list, second: list) -> bool:
    """The same classes in the same order, percentages equal up to rounding (threads may sum in another order)."""
    return [label for label, _ in first[:1]] == [label for label, _ in second[:1]] and all(
        abs(a[1] - b[1]) <= 0.05 for a, b in zip(first, second, strict=True)
    )


def classify_one(client, job_id: str, image: Path) -> list:
    answer = client.post(CLASSIFY_ONE, data={"job_id": job_id, "image_file": (open(image, "rb"), image.name)})
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["predictions"]


@pytest.fixture(scope="module")
def made_pretrained(trained):
    _, client, model, _, _ = trained
    answer = client.post(f"/models/{model}/make_pretrained.json", data={"snapshot_epoch": "2", "name": "lenet e2"})
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["id"]


def test_make_pretrained_then_classify_one(trained, made_pretrained):
    app, client, model, _, held_out = trained
    shown = client.get(f"/pretrained_models/{made_pretrained}.json").get_json()
    assert shown["type"] == "pretrained" and shown["status"] == "Done" and shown["name"] == "lenet e2"
    assert shown["labels"] == list("0123456789") and shown["image_shape"] == [28, 28, 1]
    assert shown["snapshot_epoch"] == 2 and shown["source"]["model"] == model
    assert {f["name"] for f in shown["files"]} >= {"info.json", "network.py", "labels.txt", "mean.npy"}
    assert made_pretrained in pretrained_ids(client)
    image = sorted((held_out / "7").glob("*.png"))[0]
    from_pretrained = classify_one(client, made_pretrained, image)
    answer = client.post(CLASSIFY_ONE, data={"job_id": model, "snapshot_epoch": "2", "image_path": str(image)})
    assert same_predictions(from_pretrained, answer.get_json()["predictions"]), answer.get_json()
    page = client.get(f"/pretrained_models/{made_pretrained}", headers={"Accept": "text/html"})
    assert page.status_code == 200 and b"Classify One" in page.data and b"lenet e2" in page.data
    assert b"Pretrained Models" in client.get("/", headers={"Accept": "text/html"}).data
    refused = client.post(f"/models/{model}/make_pretrained.json", data={"snapshot_epoch": "9"})
    assert refused.status_code == 400 and "no snapshot at epoch 9" in refused.get_json()["errors"]


def test_upload_archive_creates_a_pretrained_model(trained, made_pretrained, tmp_path):
    app, client, model, _, held_out = trained
    data = download(client, model, ".tar.gz", snapshot_epoch="2")
    answer = client.post("/pretrained_models/upload_archive.json",
                         data={"archive": (io.BytesIO(data), "lenet.tar.gz")})  # fmt: skip
    assert answer.status_code == 200, answer.get_json()
    created = answer.get_json()["id"]
    shown = client.get(f"/pretrained_models/{created}.json").get_json()
    assert shown["name"] == "lenet" and shown["source"] == {"source": "archive", "filename": "lenet.tar.gz"}
    image = sorted((held_out / "4").glob("*.png"))[0]
    assert same_predictions(classify_one(client, created, image), classify_one(client, made_pretrained, image))
    # A pretrained model downloads as the same layout, and that archive uploads again (here inside a folder).
    again = client.get(f"/pretrained_models/{created}/download.zip")
    assert again.status_code == 200
    wrapped = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(again.get_data())) as source, zipfile.ZipFile(wrapped, "w") as dest:
        for name in source.namelist():
            dest.writestr(f"lenet/{name}", source.read(name))
    upload = {"archive": (io.BytesIO(wrapped.getvalue()), "x.zip"), "job_name": "again"}
    reuploaded = client.post("/pretrained_models/upload_archive.json", data=upload)
    assert reuploaded.status_code == 200, reuploaded.get_json()
    assert client.get(f"/pretrained_models/{reuploaded.get_json()['id']}.json").get_json()["name"] == "again"


def tar_of(files: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            archive.addfile(info)
    return buffer.getvalue()


def test_bad_archives_are_refused_and_leave_nothing(trained, tmp_path):
    app, client, model, _, _ = trained
    good = download(client, model, ".zip")
    members = {n: read_member(good, "zip", n) for n in archive_names(good, "zip")}
    info = json.loads(members["info.json"])
    no_checkpoint = {n: c for n, c in members.items() if ".data-" not in n}
    escaping_info = {**members, "info.json": json.dumps({**info, "network": "../../network.py"}).encode()}
    cases = {
        "no info.json": (tar_of({"network.py": members["network.py"]}), "no info.json"),
        "../evil": (tar_of({**members, "../evil": b"x"}), "outside the archive"),
        "absolute": (tar_of({**members, "/tmp/evil": b"x"}), "absolute path"),
        "link": (tar_of(members, links={"evil": "/etc/passwd"}), "is a link"),
        "not an archive": (b"hello, this is text\n" * 20, "not a tar, tar.gz or zip"),
        "incomplete": (tar_of(no_checkpoint), "no data file"),
        "info path outside": (tar_of(escaping_info), "points outside the model"),
        "not json": (tar_of({**members, "info.json": b"{nope"}), "not valid JSON"),
    }
    before = pretrained_ids(client)
    for case, (data, message) in cases.items():
        answer = client.post("/pretrained_models/upload_archive.json", data={"archive": (io.BytesIO(data), "a.tgz")})
        assert answer.status_code == 400, case
        assert message in answer.get_json()["errors"]["archive"][0], (case, answer.get_json())
    assert pretrained_ids(client) == before
    assert not list(jobs_dir(app).glob(STAGING_PREFIX + "*"))
    assert not (jobs_dir(app) / "evil").exists() and not (jobs_dir(app).parent / "evil").exists()
    page = client.post("/pretrained_models/upload_archive", data={"archive": (io.BytesIO(b"text"), "a.zip")},
                       headers={"Accept": "text/html"})  # fmt: skip
    assert page.status_code == 400 and b"not a tar, tar.gz or zip" in page.data


def test_upload_separate_files(trained, tmp_path):
    app, client, model, _, held_out = trained
    unpacked = unzip(download(client, model, ".zip"), tmp_path / "files")
    prefix = f"snapshot_{float(EPOCHS)}.ckpt"

    def files(**changes):
        sent = {
            "weights_file": [(open(unpacked / f"{prefix}.index", "rb"), f"{prefix}.index"),
                             (open(unpacked / f"{prefix}.data-00000-of-00001", "rb"), f"{prefix}.data-00000-of-00001")],
            "model_def_file": (open(unpacked / "network.py", "rb"), "lenet.py"),
            "labels_file": (open(unpacked / "labels.txt", "rb"), "labels.txt"),
            "mean_file": (open(unpacked / "mean.npy", "rb"), "mean.npy"),
            "image_type": "1", "width": "28", "height": "28", "resize_mode": "squash", "job_name": "by files",
        }  # fmt: skip
        sent.update(changes)
        return {k: v for k, v in sent.items() if v is not None}

    before = pretrained_ids(client)
    no_labels = client.post("/pretrained_models/upload.json", data=files(labels_file=None))
    assert no_labels.status_code == 400 and "labels" in no_labels.get_json()["errors"]["labels_file"][0].lower()
    index_only = [(open(unpacked / f"{prefix}.index", "rb"), f"{prefix}.index")]
    only_index = client.post("/pretrained_models/upload.json", data=files(weights_file=index_only))
    assert only_index.status_code == 400 and ".data-*" in only_index.get_json()["errors"]["weights_file"][0]
    wrong_mean = client.post("/pretrained_models/upload.json", data=files(width="32"))
    assert wrong_mean.status_code == 400 and "[28, 28, 1]" in wrong_mean.get_json()["errors"]["weights_file"][0]
    assert pretrained_ids(client) == before and not list(jobs_dir(app).glob(STAGING_PREFIX + "*"))

    answer = client.post("/pretrained_models/upload.json", data=files())
    assert answer.status_code == 200, answer.get_json()
    created = answer.get_json()["id"]
    shown = client.get(f"/pretrained_models/{created}.json").get_json()
    assert shown["name"] == "by files" and shown["subtract_mean"] == "image" and shown["image_shape"] == [28, 28, 1]
    image = sorted((held_out / "1").glob("*.png"))[0]
    expected = client.post(CLASSIFY_ONE, data={"job_id": model, "image_path": str(image)}).get_json()["predictions"]
    assert same_predictions(classify_one(client, created, image), expected)


def test_new_model_from_a_pretrained_one(trained, made_pretrained):
    app, client, _, dataset, _ = trained
    fields = dict(method="pretrained", pretrained_networks=made_pretrained, train_epochs="1", framework="tensorflow",
                  model_name="from pretrained", dataset=dataset, batch_size="16", learning_rate="0.01")  # fmt: skip
    unknown = client.post(CREATE_MODEL, data={**fields, "pretrained_networks": "nope"})
    assert unknown.status_code == 400 and "pretrained" in unknown.get_json()["errors"]["pretrained_networks"][0]
    model = post_form(client, CREATE_MODEL, fields)["id"]
    wait_done(client, model, timeout=300)
    log = client.get(f"/jobs/{model}/log/train").get_data(as_text=True)
    weights = str(jobs_dir(app) / made_pretrained / "snapshot_2.0.ckpt")
    assert f"--weights {weights}" in log
    job = services_of(app).store.get(model)
    assert job.tasks[0].data["weights"]["restored"] and not job.tasks[0].data["weights"]["mismatched"]
    form = client.get("/models/images/classification/new", headers={"Accept": "text/html"}).get_data(as_text=True)
    assert "pretrained-networks-table" in form and "lenet e2" in form


def test_delete_a_pretrained_model(trained):
    app, client, model, _, _ = trained
    made = client.post(f"/models/{model}/make_pretrained.json", data={"name": "doomed"}).get_json()["id"]
    assert client.delete(f"/pretrained_models/{made}").get_json() == {"id": made, "deleted": True}
    assert made not in pretrained_ids(client) and not (jobs_dir(app) / made).exists()
    assert client.get(f"/pretrained_models/{made}.json").status_code == 404
