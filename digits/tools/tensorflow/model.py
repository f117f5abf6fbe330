"""The user's side of training: the ``UserModel(Tower)`` contract, the ``digits`` helpers, loading the source.

A network is Python source defining ``class UserModel(Tower)`` with ``@model_property`` members ``inference``
and ``loss``. It is executed in a namespace holding ``tf`` (``tf.compat.v1``, graph mode, with ``tf.contrib``),
``slim`` (``tf_slim``), ``digits`` (the helpers below), ``Tower`` and ``model_property``. ``self.x`` is NHWC.

Networks written for DIGITS begin with the imports that worked beside DIGITS' training program
(``from model import Tower``, ``from utils import model_property``, ``import tensorflow as tf``,
``import tensorflow.contrib.slim as slim``, ``import utils as digits``): :func:`network_builtins` makes those
names import what the namespace already holds, for the network's code only (see :class:`NetworkImporter`).
"""

from __future__ import annotations

import builtins
import functools
import os
import sys
import types
import warnings
from collections.abc import Callable
from typing import Any

import tensorflow as tf_root
import tf_slim as slim
import tf_slim.layers  # noqa: F401 - tf_slim's ``layers`` attribute is its layers.py; the package is tf.contrib.layers
from tensorflow.python.framework import ops as _framework_ops
from tf_slim.layers import utils as slim_layer_utils

# building and error_fields: the predictor, Visualize and detection import them from here.
from digits.tools.user_errors import NetworkError, building, error_fields, user_error  # noqa: F401

tf = tf_root.compat.v1
# tf_slim 1.1 (slim, and tf.contrib.layers: batch_norm, optimize_loss) still tests isinstance(x, ops.Tensor),
# a name TensorFlow 2.21 took out of that private module; the public tf.Tensor is the same class.
if not hasattr(_framework_ops, "Tensor"):
    _framework_ops.Tensor = tf_root.Tensor
# Every program that runs a network imports this module. tf_slim calls Keras' legacy layers, which warn about
# their own deprecation on every layer, and the compat.v1 API logs deprecation notices: noise in job logs.
warnings.filterwarnings("ignore", category=UserWarning, module=r"tensorflow\.python\.keras\..*")
tf_root.get_logger().setLevel("ERROR")


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


# The stage a graph is built for, by DIGITS' names (``digits.STAGE_TRAIN``...).
STAGE_TRAIN = "train"
STAGE_VAL = "val"
STAGE_INF = "inf"


class GraphKeys:
    """Names DIGITS networks refer to: ``MODEL`` (and ``TEMPLATE``) is the variable scope of the model.

    Summaries a network adds to the graph collection ``SUMMARIES_TRAIN`` while the training tower is built are
    training series, those in ``SUMMARIES_VAL`` while the validation tower is built validation series: each
    scalar is plotted as those of ``self.summaries`` are, the others go to TensorBoard (training only).
    Nothing reads ``SUMMARIES_INF``, ``QUEUE_RUNNERS``, ``LOADER``, ``LOSS`` or ``LOSSES``: they exist so that
    networks naming them build.
    """

    TEMPLATE = "model"
    QUEUE_RUNNERS = "queue_runner"
    MODEL = "model"
    LOSS = "loss"
    LOSSES = "losses"
    LOADER = "data"
    SUMMARIES_TRAIN = "summaries_train"
    SUMMARIES_VAL = "summaries_val"
    SUMMARIES_INF = "summaries_inf"


def classification_loss(pred, y):
    """Mean softmax cross-entropy of logits ``pred`` [N, classes] against integer labels ``y`` [N]."""
    cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(logits=pred, labels=tf.cast(y, tf.int32))
    return tf.reduce_mean(cross_entropy, name="cross_entropy")


def classification_accuracy(pred, y):
    """Fraction (0 to 1) of the batch whose highest logit is the label."""
    correct = tf.equal(tf.cast(tf.argmax(pred, 1), tf.int32), tf.cast(y, tf.int32))
    return tf.reduce_mean(tf.cast(correct, tf.float32), name="accuracy")


def classification_accuracy_top_n(pred, y, top_n: int):
    """Fraction (0 to 1) of the batch whose label is among the ``top_n`` highest logits of ``pred``."""
    in_top = tf.nn.in_top_k(tf.cast(pred, tf.float32), tf.cast(y, tf.int32), top_n)
    return tf.reduce_mean(tf.cast(in_top, tf.float32), name=f"accuracy_top_{top_n}")


def get_available_gpus() -> list[str]:
    """The GPUs this process may use (``CUDA_VISIBLE_DEVICES``), as ``/device:GPU:N`` names; empty without one.

    Read without starting TensorFlow's devices, so that asking does not take GPU memory.
    """
    return [f"/device:GPU:{i}" for i in range(len(tf_root.config.list_physical_devices("GPU")))]


def mse_loss(lhs, rhs):
    """Mean squared difference of two tensors of the same shape."""
    return tf.reduce_mean(tf.square(lhs - rhs), name="mse")


def constrastive_loss(lhs, rhs, y, margin: float = 1.0):
    """Contrastive loss as Caffe defines it: ``y d^2 + (1 - y) max(margin - d, 0)^2``, halved and averaged.

    ``d`` is the Euclidean distance between the rows of ``lhs`` and ``rhs``; ``y`` is 1 for similar pairs.
    Its gradient stays bounded where two rows coincide: ``d^2`` is the sum of squares itself, not a square
    root squared, and the margin term's root is of ``d^2 + 1e-6`` (DIGITS' guard), not of a near-zero sum.
    """
    y = tf.cast(y, tf.float32)
    squared = tf.reduce_sum(tf.square(lhs - rhs), axis=1)
    d = tf.sqrt(squared + 1e-6)
    loss = y * squared + (1.0 - y) * tf.square(tf.maximum(margin - d, 0.0))
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
    """The ``digits`` object a network sees (``import utils as digits`` gives it too): the helper functions,
    ``GraphKeys``, the ``STAGE_*`` names and ``model_property``."""
    from digits.tools.tensorflow import detection  # it imports this module

    return types.SimpleNamespace(
        classification_loss=classification_loss,
        classification_accuracy=classification_accuracy,
        classification_accuracy_top_n=classification_accuracy_top_n,
        get_available_gpus=get_available_gpus,
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
        STAGE_TRAIN=STAGE_TRAIN,
        STAGE_VAL=STAGE_VAL,
        STAGE_INF=STAGE_INF,
        model_property=model_property,
    )


def _smart_cond(pred, true_fn: Callable, false_fn: Callable):
    """``true_fn()`` or ``false_fn()`` when ``pred`` is known while building (a bool, a constant tensor), else
    a ``tf.cond`` that picks one when the graph runs."""
    known = tf.get_static_value(pred)
    if known is None:
        return tf.cond(pred, true_fn, false_fn)
    return true_fn() if known else false_fn()


@slim.add_arg_scope
def batch_norm(
    inputs,
    decay: float = 0.999,
    center: bool = True,
    scale: bool = False,
    epsilon: float = 0.001,
    activation_fn: Callable | None = None,
    param_initializers: dict | None = None,
    param_regularizers: dict | None = None,
    updates_collections: str | list | None = tf.GraphKeys.UPDATE_OPS,
    is_training=True,
    reuse: bool | None = None,
    variables_collections: dict | list | None = None,
    outputs_collections: str | list | None = None,
    trainable: bool = True,
    fused: bool | None = None,
    data_format: str = "NHWC",
    scope: str | None = None,
):
    """Batch normalization of ``inputs`` per channel, the ``slim.batch_norm`` and ``tf.contrib.layers.batch_norm``
    networks call, for tensors of any rank (a conv layer's 4-D output included); returns the normalized tensor
    (through ``activation_fn`` when given).

    Arguments and defaults are tf_slim's. The channel axis is the last one (``data_format`` "NHWC") or axis 1
    ("NCHW"); the statistics are taken over all other axes. Variables (in scope ``scope``, default "BatchNorm"):
    ``beta`` (with ``center``), ``gamma`` (with ``scale``), ``moving_mean`` and ``moving_variance`` (not
    trainable), named as tf_slim names them so that checkpoints restore by name. ``param_initializers`` and
    ``param_regularizers`` map those names to an initializer or regularizer. While ``is_training`` (a bool or a
    boolean tensor) holds, the batch's statistics normalize and the moving averages move towards them by
    ``1 - decay`` a step through ops added to ``updates_collections`` (the training program runs
    ``tf.GraphKeys.UPDATE_OPS`` with each step), or applied before the output when it is None; otherwise the
    moving averages normalize. 4-D float32 inputs go through TensorFlow's fused kernel unless ``fused`` is
    False (about 40% faster on a CPU, measured; the same statistics up to float rounding).
    """
    inputs = tf.convert_to_tensor(inputs)
    rank = inputs.shape.rank
    if data_format not in ("NHWC", "NCHW"):
        raise ValueError(f"batch_norm: data_format must be 'NHWC' or 'NCHW', not {data_format!r}")
    if rank is None or rank < 2:
        raise ValueError(f"batch_norm needs inputs of rank 2 or more, got shape {inputs.shape}")
    channel_axis = 1 if data_format == "NCHW" else rank - 1
    channels = inputs.shape[channel_axis]
    if channels is None:
        raise ValueError(f"batch_norm needs the number of channels (axis {channel_axis}) of {inputs.shape}")
    initializers, regularizers = param_initializers or {}, param_regularizers or {}
    # Per-channel values broadcast against the inputs: [C] for NHWC, [1, C, 1, 1] for NCHW.
    broadcast = [channels] if channel_axis == rank - 1 else [channels] + [1] * (rank - 2)

    with tf.variable_scope(scope, "BatchNorm", [inputs], reuse=reuse) as variable_scope:

        def parameter(name: str, initial, is_trainable: bool):
            return slim.model_variable(
                name,
                shape=[channels],
                dtype=inputs.dtype.base_dtype,
                initializer=initializers.get(name, initial),
                regularizer=regularizers.get(name),
                collections=slim_layer_utils.get_variable_collections(variables_collections, name),
                trainable=is_trainable,
            )

        beta = parameter("beta", tf.zeros_initializer(), trainable) if center else None
        gamma = parameter("gamma", tf.ones_initializer(), trainable) if scale else None
        moving_mean = parameter("moving_mean", tf.zeros_initializer(), False)
        moving_variance = parameter("moving_variance", tf.ones_initializer(), False)
        if fused is not False and rank == 4 and inputs.dtype.base_dtype == tf.float32:
            outputs, mean, variance = _smart_cond(
                is_training,
                lambda: _fused_batch_norm(inputs, gamma, beta, None, None, epsilon, data_format),
                lambda: _fused_batch_norm(inputs, gamma, beta, moving_mean, moving_variance, epsilon, data_format),
            )
        else:
            outputs = None
            axes = [axis for axis in range(rank) if axis != channel_axis]
            mean, variance = _smart_cond(
                is_training,
                lambda: tf.nn.moments(inputs, axes),
                lambda: (tf.identity(moving_mean), tf.identity(moving_variance)),
            )
        training = tf.get_static_value(is_training)
        if training is None or training:  # the moving averages move only in a graph that may train
            updates = [
                _smart_cond(
                    is_training,
                    lambda average=average, value=value: tf.assign_sub(average, (average - value) * (1.0 - decay)),
                    lambda average=average: tf.identity(average),
                )
                for average, value in ((moving_mean, mean), (moving_variance, variance))
            ]
            if updates_collections is None:
                with tf.control_dependencies(updates):
                    mean, variance = tf.identity(mean), tf.identity(variance)
                    outputs = None if outputs is None else tf.identity(outputs)
            else:
                for update in updates:
                    tf.add_to_collections(updates_collections, update)
        if outputs is None:
            outputs = tf.nn.batch_normalization(
                inputs,
                tf.reshape(mean, broadcast),
                tf.reshape(variance, broadcast),
                None if beta is None else tf.reshape(beta, broadcast),
                None if gamma is None else tf.reshape(gamma, broadcast),
                epsilon,
            )
        if activation_fn is not None:
            outputs = activation_fn(outputs)
        return slim_layer_utils.collect_named_outputs(outputs_collections, variable_scope.name, outputs)


def _fused_batch_norm(inputs, gamma, beta, mean, variance, epsilon: float, data_format: str):
    # TensorFlow's fused kernel: normalizes by the batch's statistics when ``mean`` is None, else by the given
    # ones. Returns (outputs, mean, variance) as the unfused path has them: the kernel's batch variance is the
    # unbiased one (n / (n - 1) times the batch's own), so it is scaled back for the moving average to move
    # exactly as it does with tf.nn.moments.
    channels = inputs.shape[1 if data_format == "NCHW" else 3]
    scale = gamma if gamma is not None else tf.ones([channels])
    offset = beta if beta is not None else tf.zeros([channels])
    training = mean is None
    outputs, batch_mean, batch_variance = tf.nn.fused_batch_norm(
        inputs, scale, offset, mean=mean, variance=variance, epsilon=epsilon, data_format=data_format,
        is_training=training,
    )  # fmt: skip
    if not training:
        return outputs, tf.identity(mean), tf.identity(variance)
    count = tf.cast(tf.size(inputs) // channels, tf.float32)
    return outputs, batch_mean, batch_variance * (count - 1.0) / count


def _module_copy(module: types.ModuleType, name: str, **members: Any) -> types.ModuleType:
    # A module ``name`` holding ``module``'s names with ``members`` added or replaced; ``module`` stays untouched.
    copy = types.ModuleType(name)
    copy.__dict__.update({k: v for k, v in vars(module).items() if not k.startswith("__")})
    copy.__dict__.update(members)
    return copy


def _contrib() -> types.SimpleNamespace:
    # tf.contrib is gone from TensorFlow 2; tf_slim is where its slim, layers (initializers, regularizers...),
    # framework (arg_scope, variables), losses and metrics live on. Their batch_norm is ours: tf_slim's needs
    # Keras 2's legacy layers for tensors of rank above 2, which TensorFlow 2.21 no longer has.
    layers_py = _module_copy(slim.layers, "tf_slim.layers.layers", batch_norm=batch_norm)
    network_slim = _module_copy(slim, "tf_slim", batch_norm=batch_norm, layers=layers_py)
    layers = _module_copy(sys.modules["tf_slim.layers"], "tf_slim.layers", batch_norm=batch_norm, layers=layers_py)
    return types.SimpleNamespace(
        slim=network_slim, layers=layers, framework=network_slim, losses=slim.losses, metrics=slim.metrics
    )


def _tf_with_contrib() -> types.ModuleType:
    # tf.compat.v1 plus a ``contrib`` attribute; tf.compat.v1 itself stays untouched.
    return _module_copy(tf, "tensorflow", contrib=_contrib())


class NetworkImporter:
    """The ``__import__`` of a network's builtins: DIGITS' header imports give the namespace's objects.

    ``modules`` maps the dotted names a network imports (``tensorflow``, ``tensorflow.contrib.slim``, ``model``,
    ``utils``...) to what they stand for; any other import is Python's own. It is installed as ``__import__``
    in the builtins of the network's namespace only, so it acts on the network's code (its methods included,
    which keep their module's builtins) and on nothing else: ``sys.modules`` and the real ``tensorflow``
    module, which the training program itself imports, stay as they are. (A finder on ``sys.meta_path``
    would be global to the process and cache its modules in ``sys.modules`` under TensorFlow's name.)
    """

    def __init__(self, modules: dict[str, Any]):
        self.modules = modules

    def __call__(self, name: str, globals=None, locals=None, fromlist=(), level: int = 0):  # noqa: A002
        """Import as Python does: the top-level object for ``import a.b``, the named one for ``from a.b import c``."""
        if level or name not in self.modules:
            return builtins.__import__(name, globals, locals, fromlist, level)
        return self.modules[name] if fromlist else self.modules[name.partition(".")[0]]


def network_builtins(tf_module: types.ModuleType, helpers: types.SimpleNamespace) -> dict[str, Any]:
    """Python's builtins with an ``__import__`` that gives DIGITS' header imports the network's ``tf_module``
    (``tensorflow`` and its ``contrib`` members), ``helpers`` (``utils``) and ``Tower`` (``model``)."""
    contrib = tf_module.contrib
    modules = {
        "tensorflow": tf_module,
        "tensorflow.contrib": contrib,
        **{f"tensorflow.contrib.{name}": member for name, member in vars(contrib).items()},
        "model": types.SimpleNamespace(Tower=Tower, model_property=model_property),
        "utils": helpers,
    }
    return {**vars(builtins), "__import__": NetworkImporter(modules)}


def first_output(inference) -> Any:
    """The tensor that stands for a network's output where one is needed (inference, Visualize): ``inference``
    itself, or the first of the list or tuple it returned (DIGITS' siamese example returns both towers')."""
    if isinstance(inference, list | tuple):
        if not inference:
            raise NetworkError("inference returned an empty list: return a tensor, or a list of tensors")
        inference = inference[0]
    if not isinstance(inference, tf_root.Tensor):
        raise NetworkError(f"inference must return a tensor (or a list of tensors), got {type(inference).__name__}")
    return inference


def load_network(path: str) -> type:
    """Execute the network source at ``path`` and return its ``UserModel`` class. The source may begin with
    DIGITS' import header (see :func:`network_builtins`).

    Raises :class:`NetworkError` naming the user's line for errors in the source, or when ``UserModel``
    is missing or does not inherit ``Tower``.
    """
    with open(path) as f:
        source = f.read()
    tf_module, helpers = _tf_with_contrib(), digits_helpers()
    namespace: dict[str, Any] = {
        "__name__": "digits_network",
        "__builtins__": network_builtins(tf_module, helpers),
        "tf": tf_module,
        "slim": tf_module.contrib.slim,
        "digits": helpers,
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
