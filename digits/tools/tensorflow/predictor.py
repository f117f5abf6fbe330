"""A trained model, loaded once, predicting batches of images prepared exactly as training prepared them.

:class:`Predictor` rebuilds the network of a :class:`~digits.inference.spec.ModelSpec` for inference (``is_training``
False, ``is_inference`` True, variables in scope ``model`` as in training), restores its checkpoint by name,
and takes uint8 NHWC batches at the dataset's image size: mean subtraction and center crop happen in the
graph, as validation did them. :func:`load_batch` turns image files into such a batch with the dataset's
channels and resize mode (a gray image for a color model is converted, and the reverse, as DIGITS did).
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass

import numpy as np
import tensorflow as tf_root
from PIL import Image

from digits.detection import to_original
from digits.imaging import ImageError, image_to_array, load_image, resize_image
from digits.inference.spec import ModelSpec
from digits.tools.tensorflow.data import center_crop, mean_to_subtract
from digits.tools.tensorflow.detection import detection_boxes
from digits.tools.tensorflow.model import building, first_output, load_network

tf = tf_root.compat.v1
MODEL_SCOPE = "model"
HISTOGRAM_BINS = 20
TILE_LIMIT = 64  # channels or filters drawn per layer: enough to see what a layer does, small to send


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
            resized = resize_image(image, height, width, spec.resize_mode, rng=np.random.default_rng(0))
            scale = (image.size[0] / width, image.size[1] / height)
            items.append(Item(name, image_to_array(resized), size=size, scale=scale))
        except ImageError as exc:
            items.append(Item(name, error=exc.reason))
    return items


class Predictor:
    """A model built and restored in a graph and session of its own (a worker keeps several)."""

    def __init__(self, spec: ModelSpec, finalize: bool = True):
        """Build and restore the model; ``finalize`` locks the graph (serving never grows it; export adds to it)."""
        self.spec = spec
        self.graph = tf.Graph()
        height, width, channels = spec.image_shape
        with self.graph.as_default():
            self.input = tf.placeholder(tf.as_dtype(spec.input_dtype), [None, height, width, channels], name="input")
            images = self._preprocess(tf.cast(self.input, tf.float32))
            input_shape = [int(d) for d in images.shape[1:]]
            model_class = load_network(spec.network)
            with tf.variable_scope(MODEL_SCOPE):
                tower = model_class(images, None, input_shape, len(spec.labels) or None, False, True)
                with building(spec.network):
                    output = tower.inference
                    if spec.fine_tune:
                        output = tower.fineTuneHook(output)
                    # A network returning a list of tensors (a siamese pair) is answered by its first.
                    output = first_output(output)
            self.output = tf.identity(output, name="output")
            if spec.task == "detection":
                # The boxes, not the grid, are the answer, in the graph so that an export carries them.
                with building(spec.network):
                    self.output = detection_boxes(self.output, input_shape, len(spec.labels) or None)
            # Classification networks give logits [N, classes]; anything else is returned as it is.
            self.classifies = (
                spec.task == "classification" and output.shape.rank == 2 and output.shape[1] == len(spec.labels)
            )
            self.probabilities = tf.nn.softmax(output, name="probabilities") if self.classifies else self.output
            self.variables = [v for v in tf.global_variables() if v.op.name.startswith(MODEL_SCOPE + "/")]
            # The worker is not scheduled like training: it must not take a GPU's whole memory from it.
            config = tf.ConfigProto(gpu_options=tf.GPUOptions(allow_growth=True))
            self.session = tf.Session(graph=self.graph, config=config)
            tf.train.Saver(var_list={v.op.name: v for v in self.variables}).restore(self.session, spec.checkpoint)
        if finalize:
            self.graph.finalize()

    def _preprocess(self, images):
        spec = self.spec
        if spec.mean and spec.subtract_mean != "none":
            images = images - mean_to_subtract(spec.mean, spec.subtract_mean)
        if spec.crop_size:
            images = center_crop(images, spec.crop_size, *spec.image_shape[:2])
        return images

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities ``[N, classes]`` (or the raw outputs of a non-classification network)."""
        return self.session.run(self.probabilities, {self.input: batch})

    def top(self, probabilities: np.ndarray, count: int = 5) -> list[list[tuple[str, float]]]:
        """The ``count`` best ``(label, percent)`` of each row, as DIGITS' ``predictions``."""
        labels = self.spec.labels
        best = np.argsort(-probabilities, axis=1)[:, :count]
        return [
            [(labels[i], round(float(row[i]) * 100, 2)) for i in order]
            for row, order in zip(probabilities, best, strict=True)
        ]

    def parameter_count(self) -> int:
        """Trainable parameters of the whole model."""
        return int(sum(np.prod(v.shape.as_list()) for v in self._trainable()))

    def _trainable(self) -> list:
        return self.graph.get_collection(tf.GraphKeys.TRAINABLE_VARIABLES)

    def layers(self, pixels: np.ndarray) -> list[dict]:
        """Each layer's activations for one image and its weights: tiles (PNG), stats, histogram, parameters.

        A layer is a scope directly under ``model`` (``model/conv1``): its activation is the last op output
        of that scope, its weights the trainable variables in it.
        """
        scopes: dict[str, object] = {}
        for op in self.graph.get_operations():
            parts = op.name.split("/")
            if len(parts) < 3 or parts[0] != MODEL_SCOPE or not op.outputs:
                continue
            output = op.outputs[0]
            if output.dtype == tf.float32 and output.shape.rank in (2, 4) and "read" not in parts[-1]:
                scopes[parts[1]] = output
        weights: dict[str, list] = {}
        for variable in self._trainable():
            weights.setdefault(variable.op.name.split("/")[1], []).append(variable)
        activations = self.session.run(scopes, {self.input: pixels[None]})
        values = self.session.run({v.op.name: v for vs in weights.values() for v in vs})
        layers = []
        for name, activation in activations.items():
            layer = {"name": name, "activation": describe_array(activation[0], tiles_of_activation(activation[0]))}
            layer["weights"] = [
                {"name": v.op.name, **describe_array(values[v.op.name], tiles_of_weights(values[v.op.name]))}
                for v in weights.get(name, [])
            ]
            layer["params"] = int(sum(np.prod(v.shape.as_list()) for v in weights.get(name, [])))
            layers.append(layer)
        return layers

    def close(self) -> None:
        self.session.close()


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
    predictor: Predictor, items: list[Item], top: int = 5, batch_size: int = 128, progress=None, inputs: bool = False
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
