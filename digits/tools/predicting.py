"""What serving a trained model needs whatever its framework: inputs read as training read them, answers shaped.

A framework's predictor module (``digits.tools.tensorflow.predictor``, ``digits.tools.torch.predictor``) defines
``Predictor(spec)``: ``predict(batch)`` on uint8 NHWC batches at the dataset's image size, ``top``,
``classifies``, ``spec``, ``parameter_count()``, ``layers(pixels)`` and ``close()``. This module holds the rest:
:func:`load_batch` turns image files into such a batch with the dataset's channels and resize mode (a gray image
for a color model is converted, and the reverse, as DIGITS did), :func:`classify` runs a predictor over items,
:func:`describe_array` and the tile functions draw layers, and :func:`load_predictor` picks the framework's
predictor by ``spec.framework``. It imports neither framework itself.
"""

from __future__ import annotations

import base64
import gc
import importlib
import io
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from digits.detection import to_original
from digits.imaging import ImageError, image_to_array, load_image, resize_image
from digits.inference.spec import ModelSpec

HISTOGRAM_BINS = 20
TILE_LIMIT = 64  # channels or filters drawn per layer: enough to see what a layer does, small to send
# Each framework's predictor module and the module defining its NetworkError (a fault of the user's source).
FRAMEWORKS = {
    "tensorflow": ("digits.tools.tensorflow.predictor", "digits.tools.tensorflow.model"),
    "torch": ("digits.tools.torch.predictor", "digits.tools.torch.network"),
}


class ModelMismatch(ValueError):
    """The model's files do not fit what its spec says (a snapshot of the other framework); says what to fix."""


def framework_modules(framework: str):
    """``(Predictor class, NetworkError class)`` of ``framework``; ModelMismatch naming those there are."""
    if framework not in FRAMEWORKS:
        raise ModelMismatch(f"unknown framework {framework!r}; models are one of: {', '.join(FRAMEWORKS)}")
    predictor, network = (importlib.import_module(name) for name in FRAMEWORKS[framework])
    return predictor.Predictor, network.NetworkError


def checkpoint_framework(checkpoint: str) -> str | None:
    """The framework whose files ``checkpoint`` names: ``torch`` for a ``torch.save`` file (a zip),
    ``tensorflow`` for a checkpoint prefix with its ``.index``; None when neither is there."""
    path = Path(checkpoint)
    if path.is_file() and zipfile.is_zipfile(path):
        return "torch"
    if Path(f"{checkpoint}.index").is_file():
        return "tensorflow"
    return None


def check_checkpoint(spec: ModelSpec) -> None:
    """ModelMismatch when the checkpoint is the other framework's (or missing), saying what to change."""
    found = checkpoint_framework(spec.checkpoint)
    if found is None:
        raise ModelMismatch(f"the checkpoint {spec.checkpoint} is missing (or is neither a PyTorch snapshot nor a "
                            "TensorFlow checkpoint)")  # fmt: skip
    if found != spec.framework:
        names = {"torch": "PyTorch", "tensorflow": "TensorFlow"}
        raise ModelMismatch(
            f"the checkpoint {Path(spec.checkpoint).name} is a {names[found]} snapshot but the model says framework "
            f"{spec.framework!r}: give a {names[spec.framework]} snapshot, or framework {found!r} with a "
            f"{names[found]} network"
        )


def load_predictor(spec: ModelSpec):
    """The predictor of ``spec``'s framework, built and restored; its checkpoint checked to be of that framework."""
    predictor_class, _ = framework_modules(spec.framework)
    check_checkpoint(spec)
    return predictor_class(spec)


def freeze_loaded() -> None:
    """Keep what is alive now (a framework and its models, or the web app) out of Python's garbage collections.

    They live as long as the process, and every full collection walked them all: in an inference worker some
    350,000 objects, ~150 ms in the middle of one Classify Many of 2,000 images in every few. Call it after
    loading or closing a model: what was frozen before is thawed and collected first, so a closed model is freed.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


@dataclass
class Item:
    """One input of a request: its name (path) and either its pixels or the reason it cannot be used."""

    name: str
    pixels: np.ndarray | None = None
    error: str | None = None
    size: tuple[int, int] | None = None  # the original image's (width, height)
    scale: tuple[float, float] = (1.0, 1.0)  # original pixels per input pixel (x, y): where boxes go back to


def load_batch(spec: ModelSpec, sources: list) -> list[Item]:
    """Read, convert and resize each source (a path or a binary file object) to the model's input size."""
    height, width, channels = spec.image_shape
    detection = spec.task == "detection"
    pad = tuple(spec.extra.get("detection_pad") or ()) if detection else ()
    # Only these modes pad with noise; a generator made for every image cost ~6 us, 5% of reading a small one.
    noisy = spec.resize_mode in ("fill", "half_crop")
    items = []
    for source in sources:
        name = source if isinstance(source, str) else getattr(source, "name", "image")
        try:
            # Boxes are answered in the original's pixels: its size must be the file's, not a JPEG draft's.
            image = load_image(source, channels, draft_size=None if detection else (width, height))
            size = image.size
            if pad:
                # As the detection dataset stored its images: padded at the right and bottom, then resized.
                canvas = Image.new(image.mode, pad)
                canvas.paste(image, (0, 0))
                image = canvas
            # Inference is repeatable: "fill" pads with the same noise every time.
            rng = np.random.default_rng(0) if noisy else None
            resized = resize_image(image, height, width, spec.resize_mode, rng=rng)
            scale = (image.size[0] / width, image.size[1] / height)
            items.append(Item(name, image_to_array(resized), size=size, scale=scale))
        except ImageError as exc:
            items.append(Item(name, error=exc.reason))
    return items


def top_predictions(probabilities: np.ndarray, labels: list[str], count: int = 5) -> list[list[tuple[str, float]]]:
    """The ``count`` best ``(label, percent)`` of each row, as DIGITS' ``predictions``."""
    best = np.argsort(-probabilities, axis=1)[:, :count]
    return [
        [(labels[i], round(float(row[i]) * 100, 2)) for i in order]
        for row, order in zip(probabilities, best, strict=True)
    ]


def describe_array(array: np.ndarray, tiles: np.ndarray | None) -> dict:
    """Shape, mean, standard deviation, a histogram and a tiled image (PNG, base64) of ``array``."""
    finite = array[np.isfinite(array)]
    counts, edges = np.histogram(finite, bins=HISTOGRAM_BINS) if finite.size else (np.zeros(0), np.zeros(0))
    return {
        "shape": list(array.shape),
        "mean": float(finite.mean()) if finite.size else 0.0,
        "std": float(finite.std()) if finite.size else 0.0,
        "histogram": {"counts": counts.tolist(), "edges": [round(float(e), 6) for e in edges]},
        "image": png_base64(tiles) if tiles is not None else None,
    }


def tiles_of_activation(activation: np.ndarray) -> np.ndarray:
    """HxWxC activations as a grid of C gray tiles; a vector as a near-square gray block."""
    if activation.ndim == 3:
        return tile([activation[:, :, c] for c in range(min(activation.shape[2], TILE_LIMIT))])
    return tile([square(activation)])


def tiles_of_weights(weights: np.ndarray) -> np.ndarray | None:
    """Convolution kernels ``[kh, kw, in, out]`` as a grid of out tiles (color when in is 3); a matrix as is."""
    if weights.ndim == 4:
        kernels = weights[:, :, :3, :] if weights.shape[2] == 3 else weights[:, :, :1, :]
        return tile([kernels[:, :, :, o] for o in range(min(weights.shape[3], TILE_LIMIT))], scale=4)
    if weights.ndim == 2:
        return tile([weights[:512, :512]])
    return None


def square(vector: np.ndarray) -> np.ndarray:
    side = math.ceil(math.sqrt(vector.size))
    padded = np.zeros(side * side, np.float32)
    padded[: vector.size] = vector.ravel()
    return padded.reshape(side, side)


def tile(planes: list[np.ndarray], scale: int = 1) -> np.ndarray:
    """Normalize each plane to 0..255 and lay them out in a near-square grid with 1-pixel gaps."""
    columns = math.ceil(math.sqrt(len(planes)))
    rows = math.ceil(len(planes) / columns)
    height, width = planes[0].shape[:2]
    depth = planes[0].shape[2] if planes[0].ndim == 3 else 1
    grid = np.full(((height + 1) * rows - 1, (width + 1) * columns - 1, depth), 255, np.uint8)
    for index, plane in enumerate(planes):
        plane = plane.reshape(height, width, depth).astype(np.float32)
        low, high = float(plane.min()), float(plane.max())
        scaled = (plane - low) * (255.0 / (high - low)) if high > low else np.zeros_like(plane)
        row, column = divmod(index, columns)
        grid[row * (height + 1) : row * (height + 1) + height, column * (width + 1) : column * (width + 1) + width] = (
            scaled.astype(np.uint8)
        )
    if scale > 1:
        grid = grid.repeat(scale, axis=0).repeat(scale, axis=1)
    return grid


def png_base64(pixels: np.ndarray) -> str:
    """A uint8 HxW(xC) array as a base64 PNG (for ``<img src="data:image/png;base64,...">``)."""
    image = Image.fromarray(pixels[:, :, 0] if pixels.ndim == 3 and pixels.shape[2] == 1 else pixels)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def classify(
    predictor, items: list[Item], top: int = 5, batch_size: int = 128, progress=None, inputs: bool = False
) -> list[dict]:
    """Predict every usable item in batches: ``{"name", "predictions"}`` or ``{"name", "error"}`` per item.

    ``progress(done)`` is called after each batch. Non-classification outputs come back as ``"outputs"``
    (the network's output for the item, as nested lists); with ``inputs`` each result also carries the
    network's input (``"input"``, HxWxC nested lists) for views that draw on it.
    """
    results: list[dict] = [{"name": item.name} for item in items]
    usable = [i for i, item in enumerate(items) if item.pixels is not None]
    for i, item in enumerate(items):
        if item.error:
            results[i]["error"] = item.error
    for start in range(0, len(usable), batch_size):
        chunk = usable[start : start + batch_size]
        outputs = predictor.predict(np.stack([items[i].pixels for i in chunk]))
        if predictor.classifies:
            for i, predictions in zip(chunk, predictor.top(outputs, top), strict=True):
                results[i]["predictions"] = predictions
        else:
            for i, output in zip(chunk, outputs, strict=True):
                results[i]["outputs"] = output.tolist()
                if predictor.spec.task == "detection":
                    # Boxes in input pixels (the views draw them on the input) and in the original image's.
                    results[i]["outputs"] = output[output[:, 4] > 0].tolist()
                    results[i]["detections"] = to_original(output, items[i].scale)
                    results[i]["size"] = list(items[i].size or items[i].pixels.shape[1::-1])
        if inputs:
            for i in chunk:
                results[i]["input"] = items[i].pixels.tolist()
        if progress:
            progress(start + len(chunk))
    return results
