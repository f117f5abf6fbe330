"""Build a network as training builds it and describe it: its layers, their output shapes and parameter counts.

    python -m digits.tools.tensorflow.visualize --network network.py --shape H,W,C [--nclasses N] [--tb-dir DIR]

One event on stdout: ``{"event": "result", "layers": [{"name", "type", "output_shape", "params"}, ...],
"total_params": N, "metrics": [...]}``, or ``{"event": "error", "message": .., "user_line": ..}`` for a network
that does not build (the user's file and line, as training reports them). The layers run from the input to
the loss; a layer is a variable scope of the model (``conv1``: the ops named ``model/conv1/...``), in the
order the graph builds them; its output shape is ``null`` where it depends on the batch. With ``--tb-dir`` the
graph is also written there, for TensorBoard's Graphs tab.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf_root  # noqa: E402 - after TF_CPP_MIN_LOG_LEVEL, which TensorFlow reads on import

from digits.tools.protocol import emit, run_tool  # noqa: E402
from digits.tools.tensorflow.main import MODEL_SCOPE, tower_outputs  # noqa: E402
from digits.tools.tensorflow.model import NetworkError, error_fields, first_output, load_network  # noqa: E402
from digits.visualize import parse_shape  # noqa: E402

tf = tf_root.compat.v1

# What a layer is called after: the first of these op types among its ops, else its first op that computes.
LAYER_TYPES = {
    "Conv2D": "Conv2D",
    "DepthwiseConv2dNative": "DepthwiseConv2D",
    "Conv2DBackpropInput": "Conv2DTranspose",
    "Conv3D": "Conv3D",
    "MaxPool": "MaxPool",
    "AvgPool": "AvgPool",
    "MatMul": "FullyConnected",
    "FusedBatchNorm": "BatchNorm",
    "FusedBatchNormV3": "BatchNorm",
    "LRN": "LRN",
    "RandomUniform": "Dropout",
    "ConcatV2": "Concat",
}
ACTIVATIONS = {"Relu", "Relu6", "Elu", "Selu", "LeakyRelu", "Sigmoid", "Tanh", "Softmax", "Softplus"}
# Ops that hold or pass along values rather than compute a layer's output.
PLUMBING = {
    "Const", "Identity", "VariableV2", "VarHandleOp", "ReadVariableOp", "Placeholder", "PlaceholderWithDefault",
    "NoOp", "Shape", "StridedSlice", "Pack", "Fill",
}  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m digits.tools.tensorflow.visualize", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--network", required=True, help="network source: class UserModel(Tower)")
    parser.add_argument("--shape", required=True, help="input image shape H,W,C (e.g. 28,28,1)")
    parser.add_argument("--nclasses", type=int, help="number of classes (self.nclasses)")
    parser.add_argument("--tb-dir", help="also write the graph here for TensorBoard")
    return parser


def ancestors(tensors: Sequence) -> set:
    """Every op the ``tensors`` are computed from (their own ops included)."""
    seen: set = set()
    stack = [t.op for t in tensors]
    while stack:
        op = stack.pop()
        if op in seen:
            continue
        seen.add(op)
        stack.extend(t.op for t in op.inputs)
        stack.extend(op.control_inputs)
    return seen


def shape_of(tensor) -> list[int | None] | None:
    """A static shape as a list (``None`` for a dimension known only when run), or None when even the rank is."""
    return tensor.shape.as_list() if tensor.shape.rank is not None else None


def layer_type(ops: list) -> str:
    types = [op.type for op in ops]
    main = next((LAYER_TYPES[t] for t in types if t in LAYER_TYPES), None)
    if main is None:
        main = next((t for t in types if t not in PLUMBING and t not in ACTIVATIONS), None)
    activation = next((t for t in types if t in ACTIVATIONS), None)
    if main and activation:
        return f"{main} + {activation}"
    return main or activation or (types[-1] if types else "?")


def describe_layers(graph, inference, scope: str = MODEL_SCOPE) -> list[dict]:
    """The model's layers on the way to ``inference``: one per first-level name under ``scope``, in graph order."""
    needed = ancestors([inference])
    prefix = scope + "/"
    groups: dict[str, list] = {}
    for op in graph.get_operations():
        if op in needed and op.name.startswith(prefix):
            groups.setdefault(op.name[len(prefix) :].split("/")[0], []).append(op)
    variables = tf.trainable_variables()
    layers = []
    for name, ops in groups.items():
        if all(op.type in PLUMBING for op in ops):
            continue  # constants and variables read by a layer elsewhere
        members = set(ops)
        # The layer's output: the last of its ops that something outside the layer reads (or the network's output).
        read_outside = [op for op in ops if any(c not in members for o in op.outputs for c in o.consumers())]
        exits = [op for op in ops if op is inference.op or op in read_outside]
        out = (exits or ops)[-1]
        own = [v for v in variables if v.op.name.startswith(f"{prefix}{name}/") or v.op.name == f"{prefix}{name}"]
        layers.append(
            {
                "name": name,
                "type": layer_type(ops),
                "output_shape": shape_of(out.outputs[0]) if out.outputs else None,
                "params": sum(v.shape.num_elements() or 0 for v in own),
            }
        )
    return layers


def describe_network(network: str, shape: list[int], nclasses: int | None, tb_dir: str | None = None) -> dict:
    """Build ``network`` for a batch of ``shape`` images as a training tower (``is_training``, loss included).

    Returns ``{"layers": [...], "total_params": N, "metrics": [names], "input_shape": shape, "nclasses": n}``.
    Raises :class:`NetworkError` (with the user's line when known) when it does not build.
    """
    model_class = load_network(network)
    tf.disable_eager_execution()
    graph = tf.Graph()
    with graph.as_default():
        x = tf.placeholder(tf.float32, [None, *shape], name="x")
        y = tf.placeholder(tf.int32, [None], name="y")
        with tf.variable_scope(MODEL_SCOPE):
            tower = model_class(x, y, shape, nclasses, is_training=True)
            losses, scalars, _ = tower_outputs(tower, network)
        # The layers on the way to the first output, when inference returns a list of tensors.
        inference = first_output(tower.inference)
        layers = [{"name": "input", "type": "Input", "output_shape": shape_of(x), "params": 0}]
        layers += describe_layers(graph, inference)
        for number, (loss, _) in enumerate(losses, start=1):
            name = "loss" if len(losses) == 1 else f"loss{number}"
            layers.append({"name": name, "type": "Loss", "output_shape": shape_of(loss), "params": 0})
        total = sum(v.shape.num_elements() or 0 for v in tf.trainable_variables())
        if tb_dir:
            tf.summary.FileWriter(tb_dir, graph).close()
    return {
        "layers": layers,
        "total_params": total,
        "metrics": sorted(scalars),
        "input_shape": shape,
        "nclasses": nclasses,
    }


def main(argv: Sequence[str]) -> int:
    """Describe the network; a network that does not build becomes an ``error`` event and exit status 1."""
    args = build_parser().parse_args(argv)
    try:
        shape = parse_shape(args.shape)
    except ValueError as exc:
        emit("error", message=str(exc), traceback="")
        return 2
    try:
        emit("result", **describe_network(args.network, shape, args.nclasses, args.tb_dir))
    except NetworkError as exc:
        emit("error", **error_fields(exc))
        print(str(exc), file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    run_tool(main)
