"""Export a trained PyTorch model so that it runs without this application: a ``torch.export`` program, or ONNX.

    python -m digits.tools.torch.export --spec spec.json --out DIR [--onnx]

``spec.json`` is a :class:`~digits.inference.spec.ModelSpec` of a PyTorch model; relative paths in it are read
from its own folder, so the ``info.json`` of an unpacked model archive works as it is. ``DIR`` (new) receives:

- ``model.pt2``, a ``torch.export`` program (``torch.export.load(path).module()``) that takes ``images``, uint8
  ``[N, H, W, C]`` at the dataset's size (any N), and returns ``probabilities`` ``[N, classes]`` and ``classes``
  (the top-1 label index, int64); a generic model returns its output alone. Mean subtraction, the NCHW layout
  and the center crop happen inside, as in training's validation; resizing to ``H x W`` (with the dataset's
  resize mode) and the channel count are the caller's part. Loading it needs PyTorch, not the network's source.
- or with ``--onnx``, ``model.onnx`` with the same input and outputs (``torch.onnx.export`` from that program).
- ``labels.txt`` (one label per line, in class index order) and ``info.json`` describing the input and outputs.

The export is checked before the tool ends: the written file is loaded again (``torch.export.load``, or
onnxruntime) and must give the same outputs as the trained model on a random batch of another size than the one
exported with. Speaks the JSON-lines protocol: a ``result`` event with what was written, or an ``error``.
TensorFlow is never imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from digits.tools.exporting import ExportFailed, check_difference, export_main, read_spec, write_description
from digits.tools.predicting import ModelMismatch, check_checkpoint
from digits.tools.protocol import run_tool
from digits.tools.torch.predictor import Predictor
from digits.tools.user_errors import NetworkError, building

INPUT = "images"
ONNX_OPSET = 18
TOLERANCE = 1e-4


class Served(nn.Module):
    """What an export runs: uint8 NHWC images in, ``(probabilities, classes)`` (or the network's output) out."""

    def __init__(self, predictor: Predictor):
        super().__init__()
        self.preprocess, self.network, self.classifies = predictor.preprocess, predictor.model, predictor.classifies

    def forward(self, images: torch.Tensor):
        output = self.network(self.preprocess(images))
        if not self.classifies:
            return output
        probabilities = torch.softmax(output, dim=1)
        return probabilities, probabilities.argmax(dim=1)


def exported_program(predictor: Predictor, batch: torch.Tensor) -> torch.export.ExportedProgram:
    """``torch.export`` of :class:`Served` with a dynamic batch size; NetworkError naming the user's line when
    the network cannot be traced (data-dependent Python control flow, for one)."""
    served = Served(predictor).eval()
    try:
        with building(predictor.spec.network):
            return torch.export.export(served, (batch,), dynamic_shapes=({0: torch.export.Dim("batch")},))
    except NetworkError:
        raise
    except Exception as exc:  # noqa: BLE001 - torch.export's many failures are all "cannot be exported"
        raise ExportFailed(f"torch.export cannot export the network: {type(exc).__name__}: {exc}") from None


def outputs_of(result) -> list[np.ndarray]:
    return [t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t) for t in
            (result if isinstance(result, (tuple, list)) else [result])]  # fmt: skip


def difference(got: list[np.ndarray], expected: list[np.ndarray]) -> float:
    """The largest difference between the export's outputs and the model's (classes count as numbers)."""
    if len(got) != len(expected):
        raise ExportFailed(f"the export gives {len(got)} outputs, the model {len(expected)}")
    pairs = zip(got, expected, strict=True)
    return max(float(np.abs(g.astype(np.float64) - e.astype(np.float64)).max()) for g, e in pairs)


def write_program(program, out: Path, check: torch.Tensor, expected: list[np.ndarray]) -> float:
    """``model.pt2``, loaded again and run on ``check``; returns the largest difference from ``expected``."""
    out.mkdir(parents=True)
    torch.export.save(program, str(out / "model.pt2"))
    loaded = torch.export.load(str(out / "model.pt2")).module()
    with torch.no_grad():
        return difference(outputs_of(loaded(check)), expected)


def write_onnx(program, out: Path, names: list[str], check: torch.Tensor, expected: list[np.ndarray]) -> float:
    """``model.onnx`` converted from the exported program, run by onnxruntime on ``check``; the largest difference."""
    import onnxruntime

    out.mkdir(parents=True)
    try:
        torch.onnx.export(program, input_names=[INPUT], output_names=names, f=str(out / "model.onnx"),
                          opset_version=ONNX_OPSET, dynamo=True, verbose=False)  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - a conversion failure is one message for the user
        raise ExportFailed(f"ONNX conversion failed: {type(exc).__name__}: {exc}") from None
    session = onnxruntime.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    return difference(session.run(names, {INPUT: check.numpy()}), expected)


def describe(predictor: Predictor, names: list[str], onnx: bool) -> dict:
    """The facts of ``info.json`` that are this format's: what to feed it and what comes out."""
    spec = predictor.spec
    height, width, channels = spec.image_shape
    return {
        "format": "onnx" if onnx else "torch-export",
        "model": "model.onnx" if onnx else "model.pt2",
        "load": None if onnx else "torch.export.load('model.pt2').module()",
        "input": {"name": INPUT, "dtype": spec.input_dtype, "shape": [None, height, width, channels]},
        "outputs": names,
    }


def export(spec_path: Path, out: Path, onnx: bool = False) -> dict:
    """Write the export of the model of ``spec_path`` to the new directory ``out``; returns its ``info.json``."""
    spec = read_spec(spec_path, out)
    if spec.framework != "torch":
        raise ExportFailed(f"a {spec.framework} model is exported by its own tool, not digits.tools.torch.export")
    check_checkpoint(spec)
    predictor = Predictor(spec)
    rng = np.random.default_rng(0)
    dtype = np.dtype(spec.input_dtype)
    high = 256 if dtype == np.uint8 else 2
    # Traced with one batch size and checked with another: the batch dimension must have stayed free.
    batch, check = (torch.from_numpy(rng.integers(0, high, [n, *spec.image_shape]).astype(dtype)) for n in (2, 3))
    with torch.no_grad():
        expected = outputs_of(Served(predictor).eval()(check))
    program = exported_program(predictor, batch)
    names = ["probabilities", "classes"] if predictor.classifies else ["outputs"]
    gap = write_onnx(program, out, names, check, expected) if onnx else write_program(program, out, check, expected)
    check_difference(gap, TOLERANCE)
    described = write_description(out, spec, describe(predictor, names, onnx))
    return {**described, "checked_difference": gap}


def main(argv: Sequence[str]) -> int:
    """Export as the arguments say; returns the exit status."""
    return export_main(argv, "python -m digits.tools.torch.export", __doc__, "a torch.export program", export,
                       (ExportFailed, ModelMismatch))  # fmt: skip


if __name__ == "__main__":
    run_tool(main)
