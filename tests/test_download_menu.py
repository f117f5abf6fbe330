"""The Download menu offers the export formats of the job's own framework, and says what each export holds."""

from __future__ import annotations

import io


def test_a_tensorflow_pretrained_model_offers_savedmodel_and_onnx(logged_in):
    client = logged_in
    fields = {
        "weights_file": [(io.BytesIO(b"i" * 64), "model.ckpt.index"),
                         (io.BytesIO(b"d" * 64), "model.ckpt.data-00000-of-00001")],
        "model_def_file": (io.BytesIO(b"class UserModel(Tower):\n    pass\n"), "network.py"),
        "labels_file": (io.BytesIO(b"zero\none\n"), "labels.txt"),
        "image_type": "1", "width": "28", "height": "28", "resize_mode": "squash", "job_name": "menu",
    }  # fmt: skip
    answer = client.post("/pretrained_models/upload.json", data=fields)
    assert answer.status_code == 200, answer.get_json()
    job_id = answer.get_json()["id"]
    assert client.get(f"/pretrained_models/{job_id}.json").get_json()["export_formats"] == ["savedmodel", "onnx"]
    page = client.get(f"/pretrained_models/{job_id}").get_data(as_text=True)
    assert 'id="export-savedmodel"' in page and 'id="export-onnx"' in page
    assert 'id="export-torch-export"' not in page
    assert "a TensorFlow SavedModel" in page and "<code>model.onnx</code>" in page
