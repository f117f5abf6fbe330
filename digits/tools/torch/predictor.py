"""A trained PyTorch model, loaded once, predicting batches of images prepared exactly as validation prepared them.

:class:`Predictor` builds the ``UserModel`` of a :class:`~digits.inference.spec.ModelSpec` for inference
(``is_inference`` True, ``model.eval()``), loads its snapshot's state dict (``torch.load(weights_only=True)``:
a snapshot is data, never code), and takes uint8 NHWC batches at the dataset's image size: the NCHW float
conversion, mean subtraction and center crop are those of the training tool's validation. The same duck type
as the TensorFlow predictor, so :mod:`digits.tools.predicting` serves both. TensorFlow is never imported.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn

from digits.inference.spec import ModelSpec
from digits.tools.lmdb_info import mean_to_subtract
from digits.tools.predicting import describe_array, tiles_of_activation, tiles_of_weights, top_predictions
from digits.tools.torch.data import center_crop
from digits.tools.torch.network import (
    NetworkError,
    build_model,
    building,
    first_line,
    load_network,
    network_error,
    shape_text,
)

# The predictor's interface for importers (the export tool).
__all__ = ["NetworkError", "Predictor", "Preprocess"]


class Preprocess(nn.Module):
    """uint8 (or the dataset's dtype) NHWC images -> the network's NCHW float input: mean subtracted, center
    cropped, as the training tool's validation prepares them. A module, so that exports carry it."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        mean = None
        if spec.mean and spec.subtract_mean != "none":
            array = torch.from_numpy(np.ascontiguousarray(mean_to_subtract(spec.mean, spec.subtract_mean,
                                                                           spec.image_shape)))  # fmt: skip
            mean = array.permute(2, 0, 1) if array.dim() == 3 else array[:, None, None]
        self.register_buffer("mean", mean)
        self.crop_size = spec.crop_size

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.permute(0, 3, 1, 2).float()
        if self.mean is not None:
            x = x - self.mean
        if self.crop_size:
            x = center_crop(x, self.crop_size)
        return x


class Predictor:
    """A ``UserModel`` restored from a snapshot, in eval mode, on the CPU (the worker is not scheduled like
    training and must not take a GPU from it)."""

    def __init__(self, spec: ModelSpec):
        """Build the network and load its weights. NetworkError naming the user's line for a source that fails,
        a snapshot that does not fit the network, or a classification output that does not fit the labels."""
        if spec.task == "detection":
            raise NetworkError("detection models are TensorFlow networks (DetectNet); PyTorch serves classification "
                               "and generic models")  # fmt: skip
        self.spec = spec
        height, width, channels = spec.image_shape
        self.preprocess = Preprocess(spec)
        input_shape = [spec.crop_size, spec.crop_size, channels] if spec.crop_size else [height, width, channels]
        nclasses = len(spec.labels) or None
        model_class = load_network(spec.network)
        self.model = build_model(model_class, spec.network, input_shape=input_shape, nclasses=nclasses,
                                 is_inference=True)  # fmt: skip
        self._load_weights(spec.checkpoint)
        self.model.eval()
        # One image through the network at load time: a failing forward or an output that cannot be classified
        # is the model's error, said once, rather than each request's.
        probe = torch.zeros([1, *spec.image_shape], dtype=torch.uint8)
        with torch.no_grad(), building(spec.network):
            output = self.model(self.preprocess(probe))
        line = first_line(type(self.model).forward, spec.network)
        if not isinstance(output, torch.Tensor):
            raise network_error(f"forward must return a tensor, got {type(output).__name__}", spec.network, line)
        self.classifies = spec.task == "classification"
        if self.classifies and (output.dim() != 2 or output.shape[1] != len(spec.labels)):
            raise network_error(
                f"the output of forward is {shape_text(output)}; the model classifies into {len(spec.labels)} "
                f"classes ({', '.join(spec.labels[:3])}{', ...' if len(spec.labels) > 3 else ''}), which needs "
                f"logits [batch, {len(spec.labels)}]: make the last layer's size nclasses",
                spec.network,
                line,
            )

    def _load_weights(self, checkpoint: str) -> None:
        try:
            saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the same problem for the user
            raise NetworkError(f"cannot read {os.path.basename(checkpoint)} as PyTorch weights: {exc}") from None
        state = saved.get("model") if isinstance(saved, dict) and isinstance(saved.get("model"), dict) else saved
        if not isinstance(state, dict):
            raise NetworkError(f"{os.path.basename(checkpoint)} holds no state dict")
        own = self.model.state_dict()
        missing = [name for name in own if name not in state]
        unexpected = [name for name in state if name not in own]
        reshaped = [f"{name} {list(state[name].shape)} (the network: {list(own[name].shape)})"
                    for name in own if name in state and state[name].shape != own[name].shape]  # fmt: skip
        if missing or unexpected or reshaped:
            parts = [f"{label}: {', '.join(names[:5])}{' ...' if len(names) > 5 else ''}"
                     for label, names in (("not in the snapshot", missing), ("not in the network", unexpected),
                                          ("of another shape", reshaped)) if names]  # fmt: skip
            raise NetworkError(
                f"the snapshot {os.path.basename(checkpoint)} does not fit network.py ({'; '.join(parts)}): "
                "use the network it was trained with"
            )
        self.model.load_state_dict(state)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities ``[N, classes]`` (or the raw outputs of a non-classification network), numpy."""
        with torch.no_grad(), building(self.spec.network):
            output = self.model(self.preprocess(torch.from_numpy(np.ascontiguousarray(batch))))
            if self.classifies:
                output = torch.softmax(output, dim=1)
        return output.float().numpy()

    def top(self, probabilities: np.ndarray, count: int = 5) -> list[list[tuple[str, float]]]:
        """The ``count`` best ``(label, percent)`` of each row, as DIGITS' ``predictions``."""
        return top_predictions(probabilities, self.spec.labels, count)

    def parameter_count(self) -> int:
        """Trainable parameters of the whole model."""
        return int(sum(p.numel() for p in self.model.parameters() if p.requires_grad))

    def layers(self, pixels: np.ndarray) -> list[dict]:
        """Each layer's activations for one image and its weights: tiles (PNG), stats, histogram, parameters.

        A layer is a module without children (``conv1``, ``features.0``), in the order the forward pass runs
        them; its activation is the module's output (caught by a forward hook), its weights the module's own
        parameters, in PyTorch's layout (``[out, in, kh, kw]``). Functions called in ``forward`` (``F.relu``)
        are not modules and have no entry.
        """
        outputs: dict[str, torch.Tensor] = {}

        def keep(name):
            def hook(module, args, output):
                if isinstance(output, torch.Tensor) and output.is_floating_point() and output.dim() in (2, 4):
                    outputs.setdefault(name, output.detach())

            return hook

        leaves = {name: module for name, module in self.model.named_modules() if name and not any(module.children())}
        handles = [module.register_forward_hook(keep(name)) for name, module in leaves.items()]
        try:
            self.predict(pixels[None])
        finally:
            for handle in handles:
                handle.remove()
        layers = []
        for name, output in outputs.items():
            activation = output[0].float().numpy()
            hwc = activation.transpose(1, 2, 0) if activation.ndim == 3 else activation
            weights = [(f"{name}.{key}", p.detach().float().numpy())
                       for key, p in leaves[name].named_parameters(recurse=False)]  # fmt: skip
            layers.append({
                "name": name,
                "activation": {**describe_array(hwc, tiles_of_activation(hwc)), "shape": list(activation.shape)},
                "weights": [{"name": key, **describe_array(value, tiles_of_weights(tf_layout(value)))}
                            for key, value in weights],
                "params": int(sum(value.size for _, value in weights)),
            })  # fmt: skip
        return layers

    def close(self) -> None:
        self.model = None


def tf_layout(weights: np.ndarray) -> np.ndarray:
    """PyTorch weights in the layout the tile drawing takes: kernels ``[out, in, kh, kw]`` -> ``[kh, kw, in, out]``,
    matrices ``[out, in]`` -> ``[in, out]``."""
    if weights.ndim == 4:
        return weights.transpose(2, 3, 1, 0)
    return weights.T if weights.ndim == 2 else weights
