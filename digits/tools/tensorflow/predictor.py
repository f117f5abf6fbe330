"""A trained model, loaded once, predicting batches of images prepared exactly as training prepared them.

:class:`Predictor` rebuilds the network of a :class:`~digits.inference.spec.ModelSpec` for inference (``is_training``
False, ``is_inference`` True, variables in scope ``model`` as in training), restores its checkpoint by name,
and takes uint8 NHWC batches at the dataset's image size: mean subtraction and center crop happen in the
graph, as validation did them. Reading images, classifying batches and drawing layers are framework-neutral:
:mod:`digits.tools.predicting`.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf_root

from digits.inference.spec import ModelSpec
from digits.tools.lmdb_info import mean_to_subtract
from digits.tools.predicting import (
    Item,
    classify,
    describe_array,
    load_batch,
    png_base64,
    tiles_of_activation,
    tiles_of_weights,
    top_predictions,
)
from digits.tools.tensorflow.data import center_crop
from digits.tools.tensorflow.detection import detection_boxes
from digits.tools.tensorflow.model import building, first_output, load_network

tf = tf_root.compat.v1
MODEL_SCOPE = "model"
# Importers of this module (the export tool, benchmarks) take these from here as before.
__all__ = ["Item", "Predictor", "classify", "load_batch", "png_base64"]


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
        return top_predictions(probabilities, self.spec.labels, count)

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
