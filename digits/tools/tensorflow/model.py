"""The user's side of training: the ``UserModel(Tower)`` contract, the ``digits`` helpers, loading the source.

A network is Python source defining ``class UserModel(Tower)`` with ``@model_property`` members ``inference``
and ``loss``. It is executed in a namespace holding ``tf`` (``tf.compat.v1``, graph mode), ``slim``
(``tf_slim``), ``digits`` (the helpers below), ``Tower`` and ``model_property``. ``self.x`` is NHWC.
"""

from __future__ import annotations

import contextlib
import functools
import linecache
import os
import traceback
import types
import warnings
from collections.abc import Callable
from typing import Any

import tensorflow as tf_root
import tf_slim as slim

tf = tf_root.compat.v1
# Every program that runs a network imports this module. tf_slim calls Keras' legacy layers, which warn about
# their own deprecation on every layer, and the compat.v1 API logs deprecation notices: noise in job logs.
warnings.filterwarnings("ignore", category=UserWarning, module=r"tensorflow\.python\.keras\..*")
tf_root.get_logger().setLevel("ERROR")


class NetworkError(Exception):
    """A failure in the user's network source; the message names the user's file and line when known."""

    def __init__(self, message: str, line: int | None = None, source_line: str | None = None):
        super().__init__(message)
        self.line = line
        self.source_line = source_line


def model_property(function: Callable) -> property:
    """A property computed once per tower: ``self.inference`` builds the graph on first use, then is cached."""
    attribute = "_cache_" + function.__name__

    @property
    @functools.wraps(function)
    def cached(self):
        if not hasattr(self, attribute):
            setattr(self, attribute, function(self))
        return getattr(self, attribute)

    return cached


class Tower:
    """What a network gets: its input batch, labels and dataset facts. One tower is built per device and phase.

    ``x`` is the NHWC float32 batch, ``y`` the int32 labels ``[N]``, ``input_shape`` ``[H, W, C]``;
    ``summaries`` collects summaries the network adds (each scalar becomes a plotted series).
    """

    def __init__(
        self, x, y, input_shape: list[int], nclasses: int | None, is_training: bool, is_inference: bool = False
    ):
        self.x = x
        self.y = y
        self.input_shape = input_shape
        self.nclasses = nclasses
        self.is_training = is_training
        self.is_inference = is_inference
        self.summaries: list = []
        self.disableAutoDataParallelism = False

    def fineTuneHook(self, net):  # noqa: N802 - the contract's name
        """Return the model to use for fine-tuning, given the untuned one; by default the same model.

        Called when training starts from another model's weights (a previous or pretrained model), after
        ``inference`` is built; its result becomes ``self.inference`` (so ``loss`` uses it). Variables it
        creates are new: the weights are restored by name, and it runs in the model's variable scope.
        """
        return net

    def set_inference(self, net) -> None:
        """Replace what ``self.inference`` returns (the result of ``fineTuneHook``)."""
        self._cache_inference = net

    def gradientUpdate(self, grad):  # noqa: N802 - DIGITS' name, kept for networks written for it
        return grad


class GraphKeys:
    """Names DIGITS networks refer to (``digits.GraphKeys.MODEL`` is the variable scope of the model)."""

    MODEL = "model"
    LOSS = "loss"
    LOSSES = "losses"
    TEMPLATE = "model"


def classification_loss(pred, y):
    """Mean softmax cross-entropy of logits ``pred`` [N, classes] against integer labels ``y`` [N]."""
    cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(logits=pred, labels=tf.cast(y, tf.int32))
    return tf.reduce_mean(cross_entropy, name="cross_entropy")


def classification_accuracy(pred, y):
    """Fraction (0 to 1) of the batch whose highest logit is the label."""
    correct = tf.equal(tf.cast(tf.argmax(pred, 1), tf.int32), tf.cast(y, tf.int32))
    return tf.reduce_mean(tf.cast(correct, tf.float32), name="accuracy")


def mse_loss(lhs, rhs):
    """Mean squared difference of two tensors of the same shape."""
    return tf.reduce_mean(tf.square(lhs - rhs), name="mse")


def constrastive_loss(lhs, rhs, y, margin: float = 1.0):
    """Contrastive loss as Caffe defines it: ``y d^2 + (1 - y) max(margin - d, 0)^2``, halved and averaged.

    ``d`` is the Euclidean distance between the rows of ``lhs`` and ``rhs``; ``y`` is 1 for similar pairs.
    """
    y = tf.cast(y, tf.float32)
    d = tf.sqrt(tf.reduce_sum(tf.square(lhs - rhs), axis=1) + 1e-12)
    loss = y * tf.square(d) + (1.0 - y) * tf.square(tf.maximum(margin - d, 0.0))
    return tf.multiply(0.5, tf.reduce_mean(loss), name="contrastive_loss")


def nhwc_to_nchw(x):
    """Transpose a 4-D NHWC tensor to NCHW."""
    return tf.transpose(x, [0, 3, 1, 2])


def nchw_to_nhwc(x):
    """Transpose a 4-D NCHW tensor to NHWC."""
    return tf.transpose(x, [0, 2, 3, 1])


def hwc_to_chw(x):
    """Transpose a 3-D HWC tensor to CHW."""
    return tf.transpose(x, [2, 0, 1])


def chw_to_hwc(x):
    """Transpose a 3-D CHW tensor to HWC."""
    return tf.transpose(x, [1, 2, 0])


def bgr_to_rgb(x):
    """Reverse the channel (last) axis: BGR to RGB."""
    return tf.reverse(x, axis=[-1])


def rgb_to_bgr(x):
    """Reverse the channel (last) axis: RGB to BGR."""
    return tf.reverse(x, axis=[-1])


def digits_helpers() -> types.SimpleNamespace:
    """The ``digits`` object a network sees: the helper functions and ``GraphKeys``."""
    from digits.tools.tensorflow import detection  # it imports this module

    return types.SimpleNamespace(
        classification_loss=classification_loss,
        classification_accuracy=classification_accuracy,
        mse_loss=mse_loss,
        constrastive_loss=constrastive_loss,  # the seed's spelling
        contrastive_loss=constrastive_loss,
        nhwc_to_nchw=nhwc_to_nchw,
        nchw_to_nhwc=nchw_to_nhwc,
        hwc_to_chw=hwc_to_chw,
        chw_to_hwc=chw_to_hwc,
        bgr_to_rgb=bgr_to_rgb,
        rgb_to_bgr=rgb_to_bgr,
        detection_targets=detection.detection_targets,
        detection_loss=detection.detection_loss,
        detection_boxes=detection.detection_boxes,
        GraphKeys=GraphKeys,
    )


class _Contrib:
    """``tf.contrib`` is gone from TensorFlow 2; networks written for DIGITS still call this one initializer."""

    class layers:  # noqa: N801 - mirrors the module name networks use
        @staticmethod
        def xavier_initializer(uniform: bool = True, seed: int | None = None, dtype=tf_root.float32):
            if uniform:
                return tf.glorot_uniform_initializer(seed=seed, dtype=dtype)
            return tf.glorot_normal_initializer(seed=seed, dtype=dtype)


def _tf_with_contrib() -> types.ModuleType:
    # A module that is tf.compat.v1 plus a ``contrib`` attribute; tf.compat.v1 itself stays untouched.
    module = types.ModuleType("tensorflow")
    module.__dict__.update({k: v for k, v in vars(tf).items() if not k.startswith("__")})
    module.contrib = _Contrib
    return module


def user_error(exc: BaseException, path: str) -> NetworkError:
    """A :class:`NetworkError` for ``exc`` naming the deepest line of ``path`` in its traceback (or none)."""
    line = None
    if isinstance(exc, SyntaxError) and exc.filename == path:
        line = exc.lineno
    else:
        for frame in traceback.extract_tb(exc.__traceback__):
            if frame.filename == path:
                line = frame.lineno
    where = f" ({os.path.basename(path)}, line {line})" if line else f" ({os.path.basename(path)})"
    text = exc.msg if isinstance(exc, SyntaxError) else str(exc)
    source_line = linecache.getline(path, line).rstrip() if line else None
    return NetworkError(f"{type(exc).__name__}: {text}{where}", line, source_line)


@contextlib.contextmanager
def building(network_path: str):
    """Around code that builds the user's network: what the user's source raises becomes a
    :class:`NetworkError` naming their line (errors that never passed through it stay as they are)."""
    try:
        yield
    except NetworkError:
        raise
    except Exception as exc:
        if not any(f.filename == network_path for f in traceback.extract_tb(exc.__traceback__)):
            raise
        raise user_error(exc, network_path) from exc


def error_fields(exc: Exception) -> dict:
    """The fields of a protocol ``error`` event for a failure the user can fix: message, the traceback of
    its cause and, for the network's own errors, the user's line and its source."""
    cause = exc.__cause__ or exc
    where = {"user_line": exc.line, "user_source_line": exc.source_line} if getattr(exc, "line", None) else {}
    return {"message": str(exc), "traceback": "".join(traceback.format_exception(cause)), **where}


def load_network(path: str) -> type:
    """Execute the network source at ``path`` and return its ``UserModel`` class.

    Raises :class:`NetworkError` naming the user's line for errors in the source, or when ``UserModel``
    is missing or does not inherit ``Tower``.
    """
    with open(path) as f:
        source = f.read()
    namespace: dict[str, Any] = {
        "__name__": "digits_network",
        "tf": _tf_with_contrib(),
        "slim": slim,
        "digits": digits_helpers(),
        "Tower": Tower,
        "model_property": model_property,
    }
    try:
        # Compiled with the real path, so tracebacks and errors point at the user's file and line.
        exec(compile(source, path, "exec"), namespace)
    except Exception as exc:
        raise user_error(exc, path) from exc
    model = namespace.get("UserModel")
    if not isinstance(model, type) or not issubclass(model, Tower):
        raise NetworkError(f"{os.path.basename(path)} must define class UserModel(Tower)")
    for member in ("inference", "loss"):
        if not hasattr(model, member):
            raise NetworkError(f"UserModel must define the @model_property '{member}'")
    return model
