"""PyTorch models used through the same pages as TensorFlow ones: Classify One with layers, Classify Many,
Top N, the dataset's databases, download, ONNX and torch.export exports checked outside DIGITS, an archive
uploaded again as a pretrained model, and the errors of a model that does not fit what it is given."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile

import numpy as np
import pytest
from helpers import logged_in_client, make_dataset, train_lenet, wait_done
from PIL import Image
from sample_images import write_digits_folder

from digits.web.services import services_of

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.slow

CLASSIFY_ONE = "/models/images/classification/classify_one.json"
CLASSIFY_MANY = "/models/images/classification/classify_many.json"
TOP_N = "/models/images/classification/top_n.json"


@pytest.fixture(scope="module")
def trained(make_module_app, tmp_path_factory):
    """An app with a PyTorch LeNet trained for 5 epochs on 30 digits per class, and 10 held-out digits per class."""
    root = tmp_path_factory.mktemp("torch-inference")
    train = write_digits_folder(root / "train", per_class=30)
    held_out = write_digits_folder(root / "held-out", per_class=10, skip=30)
    app = make_module_app(root / "jobs")
    client = logged_in_client(app)
    dataset = make_dataset(client, train, folder_pct_val="20")
    model = train_lenet(client, dataset, framework="torch", train_epochs="5", batch_size="16", solver="SGD",
                        learning_rate="0.02", lr_policy="fixed", random_seed="3")  # fmt: skip
    return app, client, model, held_out


def held_out_list(held_out, per_class: int) -> str:
    """Lines ``path label`` of ``per_class`` held-out images of each class."""
    images = [path for label in "0123456789" for path in sorted((held_out / label).glob("*.png"))[:per_class]]
    return "".join(f"{path} {path.parent.name}\n" for path in images)


def test_classify_one_with_layers_in_the_torch_worker(trained):
    app, client, model, held_out = trained
    right = 0
    for label in "0123456789":
        image = sorted((held_out / label).glob("*.png"))[0]
        answer = client.post(CLASSIFY_ONE, data={"job_id": model, "image_file": (open(image, "rb"), image.name)})
        assert answer.status_code == 200, answer.get_json()
        predictions = answer.get_json()["predictions"]
        assert len(predictions) == 5 and predictions[0][1] >= predictions[1][1]
        right += predictions[0][0] == label
    assert right >= 8, f"only {right} of 10 held-out digits right"
    image = sorted((held_out / "3").glob("*.png"))[0]
    answer = client.post(CLASSIFY_ONE, data={"job_id": model, "image_path": str(image), "show_visualizations": "y"})
    data = answer.get_json()
    assert [layer["name"] for layer in data["layers"]] == ["conv1", "conv2", "fc1", "fc2"]
    conv1 = data["layers"][0]
    # PyTorch's layouts: activations CHW, kernels [out, in, kh, kw].
    assert conv1["activation"]["shape"] == [20, 24, 24] and conv1["params"] == 5 * 5 * 20 + 20
    weights = conv1["weights"][0]
    assert weights["name"] == "conv1.weight" and weights["shape"] == [20, 1, 5, 5]
    assert sum(weights["histogram"]["counts"]) == 500
    Image.open(io.BytesIO(__import__("base64").b64decode(weights["image"]))).verify()
    assert data["parameters"] == sum(layer["params"] for layer in data["layers"])
    # The PyTorch model was served by a worker of its own, which never loaded TensorFlow.
    workers = services_of(app).inference.workers
    assert workers["torch"].pid is not None and workers["tensorflow"].pid is None


def test_classify_many_top_n_and_the_validation_database(trained):
    _, client, model, held_out = trained
    listed = held_out_list(held_out, 4)
    answer = client.post(CLASSIFY_MANY, data={"job_id": model, "image_list": (io.BytesIO(listed.encode()), "l.txt")})
    assert answer.status_code == 200, answer.get_json()
    summary = answer.get_json()["summary"]
    assert summary["count"] == 40 and summary["top1_accuracy"] >= 0.8
    top = client.post(TOP_N, data={"job_id": model, "image_list": (io.BytesIO(listed.encode()), "l.txt"),
                                   "top_n": "3"})  # fmt: skip
    assert top.status_code == 200, top.get_json()
    best = top.get_json()["top_n"]
    assert sorted(best) == list("0123456789") and all(len(images) == 3 for images in best.values())
    assert all(image["name"].split("/")[-2] == "4" for image in best["4"][:2])
    # The dataset's validation database runs as a background job of the batch tool, with the torch predictor.
    started = client.post(CLASSIFY_MANY, data={"job_id": model, "db": "val"})
    assert started.status_code == 202, started.get_json()
    job_id = started.get_json()["id"]
    wait_done(client, job_id, timeout=120)
    done = client.get(f"/inference/{job_id}.json").get_json()
    assert done["summary"]["count"] == 60 and done["summary"]["top1_accuracy"] >= 0.7


def test_download_export_and_reupload_as_pretrained(trained, tmp_path):
    _, client, model, held_out = trained
    data = client.get(f"/models/{model}/download.tar.gz").get_data()
    archive = tarfile.open(fileobj=io.BytesIO(data), mode="r:gz")
    info = json.loads(archive.extractfile("info.json").read())
    assert info["framework"] == "torch" and info["checkpoint"] == "snapshot_5.0.pt"
    assert sorted(archive.getnames()) == ["info.json", "labels.txt", "mean.npy", "network.py", "snapshot_5.0.pt"]
    batch = np.stack([np.array(Image.open(p))[:, :, None] for p in sorted(held_out.glob("*/*.png"))[:8]])
    # ONNX, checked by the tool against the model, then run here by onnxruntime without DIGITS nor torch's model.
    onnxruntime = pytest.importorskip("onnxruntime")
    exported = client.post(f"/models/{model}/export.zip?format=onnx")
    assert exported.status_code == 200, exported.get_data(as_text=True)[:500]
    zipfile.ZipFile(io.BytesIO(exported.get_data())).extractall(tmp_path / "onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "onnx" / "model.onnx"), providers=["CPUExecutionProvider"])
    probabilities, classes = session.run(["probabilities", "classes"], {"images": batch})
    assert probabilities.shape == (8, 10) and np.allclose(probabilities.sum(1), 1, atol=1e-4)
    # The framework's own export (the default): a torch.export program, loaded without the network's source.
    native = client.post(f"/models/{model}/export.zip")
    assert native.status_code == 200, native.get_data(as_text=True)[:500]
    zipfile.ZipFile(io.BytesIO(native.get_data())).extractall(tmp_path / "native")
    assert json.loads((tmp_path / "native" / "info.json").read_text())["format"] == "torch-export"
    program = torch.export.load(str(tmp_path / "native" / "model.pt2")).module()
    same, same_classes = program(torch.from_numpy(batch))
    assert np.abs(same.detach().numpy() - probabilities).max() < 1e-4
    assert (same_classes.numpy() == classes).all()
    assert client.post(f"/models/{model}/export.zip?format=savedmodel").status_code == 400
    # The archive, uploaded again, is a pretrained PyTorch model that classifies as the model does.
    upload = client.post("/pretrained_models/upload_archive.json",
                         data={"archive": (io.BytesIO(data), "lenet.tar.gz"), "name": "torch lenet"})  # fmt: skip
    assert upload.status_code == 200, upload.get_json()
    pretrained = upload.get_json()["id"]
    assert client.get(f"/pretrained_models/{pretrained}.json").get_json()["framework"] == "torch"
    image = sorted((held_out / "7").glob("*.png"))[0]
    ours = client.post(CLASSIFY_ONE, data={"job_id": model, "image_path": str(image)}).get_json()
    theirs = client.post(CLASSIFY_ONE, data={"job_id": pretrained, "image_path": str(image)}).get_json()
    assert theirs["predictions"] == ours["predictions"]


def tar_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in files.items():
            member = tarfile.TarInfo(name)
            member.size = len(content)
            archive.addfile(member, io.BytesIO(content))
    return buffer.getvalue()


def test_archives_of_the_other_framework_and_networks_that_do_not_fit(trained):
    _, client, model, held_out = trained
    data = client.get(f"/models/{model}/download.tar.gz").get_data()
    archive = tarfile.open(fileobj=io.BytesIO(data), mode="r:gz")
    files = {name: archive.extractfile(name).read() for name in archive.getnames()}
    info = json.loads(files["info.json"])
    upload = "/pretrained_models/upload_archive.json"

    def refused(changed: dict) -> str:
        answer = client.post(upload, data={"archive": (io.BytesIO(tar_of({**files, **changed})), "a.tar.gz")})
        assert answer.status_code == 400, answer.get_json()
        return json.dumps(answer.get_json())

    # A PyTorch snapshot said to be TensorFlow's, a TensorFlow checkpoint said to be PyTorch's.
    as_tensorflow = json.dumps({**info, "framework": "tensorflow"}).encode()
    assert "say framework 'torch'" in refused({"info.json": as_tensorflow})
    tf_checkpoint = {"info.json": json.dumps({**info, "checkpoint": "model.ckpt"}).encode(),
                     "model.ckpt.index": b"x", "model.ckpt.data-00000-of-00001": b"x"}  # fmt: skip
    assert "is a TensorFlow checkpoint" in refused(tf_checkpoint)
    assert "'caffe'" in refused({"info.json": json.dumps({**info, "framework": "caffe"}).encode()})
    image = sorted((held_out / "1").glob("*.png"))[0]

    def classify_with(line: str, instead: str) -> str:
        changed = {"network.py": files["network.py"].decode().replace(line, instead).encode()}
        answer = client.post(upload, data={"archive": (io.BytesIO(tar_of({**files, **changed})), "b.tar.gz")})
        wrong = client.post(CLASSIFY_ONE, data={"job_id": answer.get_json()["id"], "image_path": str(image)})
        assert wrong.status_code == 400, wrong.get_json()
        return json.dumps(wrong.get_json())

    # A network whose output is not one logit per class: the error names the line of its forward.
    message = classify_with("return self.fc2(x)", "return self.fc2(x)[:, :7]")
    assert "the output of forward is [batch, 7]" in message and "logits [batch, 10]" in message
    assert "(network.py, line 23)" in message
    # The snapshot of another network: which tensors do not fit.
    message = classify_with("nn.Linear(500, nclasses)", "nn.Linear(500, 7)")
    assert "does not fit network.py" in message and "fc2.weight [10, 500] (the network: [7, 500])" in message
    # The worker is still there for good models.
    again = client.post(CLASSIFY_ONE, data={"job_id": model, "image_path": str(image)})
    assert again.status_code == 200
