"""Build a PyTorch network as training builds it and describe it: its layers, their output shapes and parameters.

    python -m digits.tools.torch.visualize --network network.py --shape H,W,C [--nclasses N]

The PyTorch twin of ``digits.tools.tensorflow.visualize``, with the same answer: one event on stdout, ``{"event":
"result", "layers": [{"name", "type", "output_shape", "params"}, ...], "total_params": N, "metrics": [...],
"layout": "NCHW"}``, or ``{"event": "error", "message": .., "user_line": ..}`` for a network that does not build or
run (the user's file and line, as training reports them).

``UserModel`` is built for training (``is_inference`` False, ``model.train()``) and runs one forward pass on a
batch of zeros, then its loss (the default one, or its own) against zero labels. A layer is a module without
children (``conv1``, ``features.0``), in the order the forward pass first calls it; its type is the module's
class, its output shape that of its first output (NCHW for images, the batch dimension ``null``), its parameters
the module's own. Functions called in ``forward`` (``F.relu``, ``x.flatten(1)``) are not modules and have no
entry; modules the forward pass never calls are left out, though their parameters count in ``total_params``.
TensorFlow is never imported.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import torch
from torch import nn

from digits.tools.protocol import emit, run_tool
from digits.tools.torch.network import NetworkError, Objective, build_model, error_fields, load_network
from digits.visualize import parse_shape

# Two images, not one: batch normalization in training mode needs more than one value per channel.
BATCH = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m digits.tools.torch.visualize", description=__doc__.splitlines()[0])
    parser.add_argument("--network", required=True, help="network source: class UserModel(torch.nn.Module)")
    parser.add_argument("--shape", required=True, help="input image shape H,W,C (e.g. 28,28,1)")
    parser.add_argument("--nclasses", type=int, help="number of classes (self.nclasses)")
    return parser


def batch_shape(value) -> list[int | None] | None:
    """The shape of a module's output (its first tensor when it gives several) with the batch as ``None``."""
    if isinstance(value, (tuple, list)):
        value = next((v for v in value if isinstance(v, torch.Tensor)), None)
    if not isinstance(value, torch.Tensor):
        return None
    return [None, *value.shape[1:]] if value.dim() else []


def own_parameters(module: nn.Module) -> int:
    """The trainable parameters a module holds itself (not its children's)."""
    return int(sum(p.numel() for p in module.parameters(recurse=False) if p.requires_grad))


def describe_network(network: str, shape: list[int], nclasses: int | None) -> dict:
    """Build ``network`` for ``shape`` [H, W, C] images, run it on zeros with forward hooks on its leaf modules.

    Returns ``{"layers": [...], "total_params": N, "metrics": [names], "input_shape": shape, "nclasses": n,
    "layout": "NCHW"}``. Raises :class:`NetworkError` (with the user's line when known) when it does not build or
    run, or when its output does not fit the loss.
    """
    model_class = load_network(network)
    torch.manual_seed(0)
    model = build_model(model_class, network, input_shape=list(shape), nclasses=nclasses, is_inference=False)
    model.train()
    layers: dict[str, dict] = {}

    def keep(name: str, module: nn.Module):
        def hook(_module, _args, output):
            shape = batch_shape(output)
            layers.setdefault(name, {"name": name, "type": type(module).__name__, "output_shape": shape,
                                     "params": own_parameters(module)})  # fmt: skip

        return hook

    leaves = [(name, m) for name, m in model.named_modules() if name and not any(m.children())]
    handles = [module.register_forward_hook(keep(name, module)) for name, module in leaves]
    height, width, channels = shape
    x = torch.zeros(BATCH, channels, height, width)
    objective = Objective(model, network, classification=nclasses is not None)
    try:
        output = objective.forward(x)
    finally:
        for handle in handles:
            handle.remove()
    # The labels the loss gets in training: class indices, or (without classes) values shaped as the output.
    y = torch.zeros(BATCH, dtype=torch.long) if nclasses is not None else torch.zeros_like(torch.as_tensor(output))
    loss = objective.loss(output, y)
    metrics = objective.metrics(output, y)
    return {
        "layers": [
            {"name": "input", "type": "Input", "output_shape": batch_shape(x), "params": 0},
            *layers.values(),
            {"name": "loss", "type": "Loss", "output_shape": list(loss.shape), "params": 0},
        ],
        "total_params": int(sum(p.numel() for p in model.parameters() if p.requires_grad)),
        "metrics": sorted(metrics),
        "input_shape": shape,
        "nclasses": nclasses,
        "layout": "NCHW",
    }


def main(argv: Sequence[str]) -> int:
    """Describe the network; a network that does not build or run becomes an ``error`` event and exit status 1."""
    args = build_parser().parse_args(argv)
    try:
        shape = parse_shape(args.shape)
    except ValueError as exc:
        emit("error", message=str(exc), traceback="")
        return 2
    # A description needs no speed: one thread leaves the shared CPUs to training.
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            emit("result", **describe_network(args.network, shape, args.nclasses))
    except NetworkError as exc:
        emit("error", **error_fields(exc))
        print(str(exc), file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    run_tool(main)
