"""Export a trained model so that it runs without this application: a TensorFlow SavedModel, or ONNX.

    python -m digits.tools.tensorflow.export --spec spec.json --out DIR [--onnx]

``spec.json`` is a :class:`~digits.inference.spec.ModelSpec`; relative paths in it are read from its own folder,
so the ``info.json`` of an unpacked model archive works as it is. ``DIR`` (new) receives:

- a SavedModel (``saved_model.pb``, ``variables/``) whose ``serving_default`` signature takes ``images``, uint8
  ``[N, H, W, C]`` at the dataset's size, and returns ``probabilities`` ``[N, classes]`` and ``classes`` (the
  top-1 label index, int64), or for a detection model ``detections`` ``[N, 50, 6]`` (boxes in input pixels
  after non-maximum suppression, see ``docs/detection.md``). Mean subtraction and the center crop happen
  inside, as in training's validation;
  resizing to ``H x W`` (with the dataset's resize mode) and the channel count are the caller's part.
- or with ``--onnx``, ``model.onnx`` with the same input (``input:0``) and outputs (``probabilities:0``,
  ``classes:0``), converted by ``tf2onnx`` when it is installed.
- ``labels.txt`` (one label per line, in class index order) and ``info.json`` describing the input and outputs.

The export is checked before the tool ends: the written model is loaded again (TF2, eager; or onnxruntime
when installed) and must give the same probabilities as the trained model on a random batch.
Speaks the JSON-lines protocol: a ``result`` event with what was written, or an ``error``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf_root  # noqa: E402

from digits.tools.exporting import ExportFailed, check_difference, export_main, read_spec, write_description  # noqa: E402
from digits.tools.protocol import run_tool  # noqa: E402
from digits.tools.tensorflow.predictor import Predictor  # noqa: E402

tf = tf_root.compat.v1
SIGNATURE = "serving_default"
INPUT = "images"
ONNX_OPSET = 15
TOLERANCE = 1e-4


def build_outputs(predictor: Predictor) -> dict:
    """The signature's outputs, added to the predictor's graph: ``probabilities`` and, for classifiers, ``classes``;
    for a detection model ``detections`` (its boxes after non-maximum suppression)."""
    with predictor.graph.as_default():
        key = "detections" if predictor.spec.task == "detection" else "probabilities"
        outputs = {key: predictor.probabilities}
        if predictor.classifies:
            outputs["classes"] = tf.argmax(predictor.probabilities, axis=1, name="classes")
    return outputs


def write_savedmodel(predictor: Predictor, outputs: dict, out: Path) -> None:
    """A TF1-style SavedModel of the predictor's session, loadable by TF2's ``tf.saved_model.load``."""
    with predictor.graph.as_default():
        signature = tf.saved_model.signature_def_utils.predict_signature_def(
            inputs={INPUT: predictor.input}, outputs=outputs
        )
        builder = tf.saved_model.Builder(str(out))
        builder.add_meta_graph_and_variables(
            predictor.session,
            [tf.saved_model.tag_constants.SERVING],
            signature_def_map={SIGNATURE: signature},
            strip_default_attrs=True,
        )
        builder.save()


def check_savedmodel(out: Path, batch: np.ndarray, expected: np.ndarray, key: str = "probabilities") -> float:
    """Load the SavedModel as a user would (TF2, eager) and compare output ``key``; returns the largest difference."""
    loaded = tf_root.saved_model.load(str(out))
    answer = loaded.signatures[SIGNATURE](**{INPUT: tf_root.constant(batch)})
    return float(np.abs(answer[key].numpy() - expected).max())


def write_onnx(predictor: Predictor, outputs: dict, out: Path) -> None:
    """``model.onnx`` converted by tf2onnx from the predictor's graph with its variables frozen to constants."""
    try:
        import tf2onnx
    except ImportError as exc:
        raise ExportFailed(f"ONNX export needs the tf2onnx package, which is not installed here ({exc})") from None
    names = [tensor.op.name for tensor in outputs.values()]
    frozen = tf.graph_util.convert_variables_to_constants(predictor.session, predictor.graph.as_graph_def(), names)
    out.mkdir(parents=True)
    tf2onnx.convert.from_graph_def(
        frozen,
        input_names=[predictor.input.name],
        output_names=[tensor.name for tensor in outputs.values()],
        opset=ONNX_OPSET,
        output_path=str(out / "model.onnx"),
    )


def check_onnx(
    out: Path, input_name: str, batch: np.ndarray, expected: np.ndarray, output_name: str = "probabilities:0"
) -> float | None:
    """Run ``model.onnx`` with onnxruntime when it is installed; the largest difference, or None."""
    try:
        import onnxruntime
    except ImportError:
        return None
    session = onnxruntime.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    probabilities = session.run([output_name], {input_name: batch})[0]
    return float(np.abs(probabilities - expected).max())


def describe(predictor: Predictor, outputs: dict, onnx: bool) -> dict:
    """The facts of ``info.json`` that are this format's: what to feed it and what comes out."""
    spec = predictor.spec
    height, width, channels = spec.image_shape
    input_name = predictor.input.name if onnx else INPUT
    return {
        "format": "onnx" if onnx else "savedmodel",
        "model": "model.onnx" if onnx else ".",
        "signature": None if onnx else SIGNATURE,
        "input": {"name": input_name, "dtype": "uint8", "shape": [None, height, width, channels]},
        "outputs": {key: (tensor.name if onnx else key) for key, tensor in outputs.items()},
    }


def export(spec_path: Path, out: Path, onnx: bool = False) -> dict:
    """Write the export of the model of ``spec_path`` to the new directory ``out``; returns its ``info.json``."""
    spec = read_spec(spec_path, out)
    predictor = Predictor(spec, finalize=False)  # the export adds its outputs and a saver
    outputs = build_outputs(predictor)
    batch = np.random.default_rng(0).integers(0, 256, [4, *spec.image_shape], dtype=np.uint8)
    expected = predictor.predict(batch)
    if onnx:
        write_onnx(predictor, outputs, out)
        difference = check_onnx(out, predictor.input.name, batch, expected, next(iter(outputs.values())).name)
    else:
        write_savedmodel(predictor, outputs, out)
        difference = check_savedmodel(out, batch, expected, next(iter(outputs)))
    check_difference(difference, TOLERANCE)
    described = write_description(out, spec, describe(predictor, outputs, onnx))
    predictor.close()
    return {**described, "checked_difference": difference}


def main(argv: Sequence[str]) -> int:
    """Export as the arguments say; returns the exit status."""
    return export_main(argv, "python -m digits.tools.tensorflow.export", __doc__, "a SavedModel", export)


if __name__ == "__main__":
    run_tool(main)
