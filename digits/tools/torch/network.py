"""The user's side of PyTorch training: the ``UserModel(torch.nn.Module)`` contract, loading the source, errors.

A network is Python source defining::

    class UserModel(torch.nn.Module):
        def __init__(self, input_shape, nclasses, is_inference=False):  # any of these, by name (or **facts)
            super().__init__()
            ...
        def forward(self, x):            # x: NCHW float32 batch, mean subtracted, cropped -> the output
            ...
        def loss(self, output, y):       # optional: a scalar tensor (default below)
            ...
        def metrics(self, output, y):    # optional: {name: scalar}, each a plotted series (train and val)
            ...
        def regularization(self):        # optional: a scalar added to the loss of training steps (weight decay)
            ...

The facts are passed to ``__init__`` as keyword arguments, those it names (all of them when it takes ``**kwargs``):
``input_shape`` ``[H, W, C]`` (after cropping), ``nclasses`` (None for datasets without classes), ``is_inference``
(True when the model is built to serve predictions). They are also attributes of the built model, so ``loss`` and
``metrics`` can read ``self.nclasses``. The phase within training is PyTorch's own: ``self.training`` is True for
training steps and False for validation (``model.train()`` / ``model.eval()``).

``y`` is, by the dataset's labels: int64 ``[N]`` class indices; float32 ``[N, K]`` value vectors; float32 NCHW
``[N, C, H, W]`` label arrays (masks of class indices, target images) as stored; int64 -1 ``[N]`` when there are none.
Without ``loss``, classification uses the cross-entropy of logits ``[N, nclasses]``, other labels the mean squared
error against ``y``. Without ``metrics``, classification reports ``accuracy``. ``regularization()`` is optimized
with the loss in training steps but not reported in it, as TensorFlow's regularization losses are.

The source runs with ``torch``, ``nn`` (``torch.nn``), ``F`` (``torch.nn.functional``) and ``digits`` (the helpers
below) already defined; it may import what it needs as any Python file does.
"""

from __future__ import annotations

import inspect
import os
import types
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812 - the name every PyTorch user knows
from torch import nn

# error_fields: the predictor and Visualize import it from here.
from digits.tools.user_errors import NetworkError, building, error_fields, network_error, user_error  # noqa: F401

FACTS = ("input_shape", "nclasses", "is_inference")


# --- Helpers the network sees as ``digits`` -------------------------------------------------------------------


def classification_loss(output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean softmax cross-entropy of logits ``output`` [N, classes] against integer labels ``y`` [N]."""
    return F.cross_entropy(output, y.long())


def classification_accuracy(output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Fraction (0 to 1) of the batch whose highest logit is the label."""
    return (output.argmax(1) == y).float().mean()


def mse_loss(lhs: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of two tensors of the same shape."""
    return F.mse_loss(lhs, rhs)


def contrastive_loss(lhs: torch.Tensor, rhs: torch.Tensor, y: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Contrastive loss as Caffe defines it: ``y d^2 + (1 - y) max(margin - d, 0)^2``, halved and averaged.

    ``d`` is the Euclidean distance between the rows of ``lhs`` and ``rhs``; ``y`` is 1 for similar pairs.
    """
    y = y.float()
    d = torch.sqrt(((lhs - rhs) ** 2).sum(dim=1) + 1e-12)
    return 0.5 * (y * d**2 + (1 - y) * torch.clamp(margin - d, min=0) ** 2).mean()


def digits_helpers() -> types.SimpleNamespace:
    """The ``digits`` object a network sees: the TensorFlow contract's helpers, for NCHW tensors."""
    return types.SimpleNamespace(
        classification_loss=classification_loss,
        classification_accuracy=classification_accuracy,
        mse_loss=mse_loss,
        contrastive_loss=contrastive_loss,
        constrastive_loss=contrastive_loss,  # the TensorFlow seed's spelling, for networks ported from it
        nhwc_to_nchw=lambda x: x.permute(0, 3, 1, 2),
        nchw_to_nhwc=lambda x: x.permute(0, 2, 3, 1),
        hwc_to_chw=lambda x: x.permute(2, 0, 1),
        chw_to_hwc=lambda x: x.permute(1, 2, 0),
        # The channel axis is third from the end in both NCHW and CHW.
        bgr_to_rgb=lambda x: x.flip(-3),
        rgb_to_bgr=lambda x: x.flip(-3),
    )


# --- Loading and building -------------------------------------------------------------------------------------


def load_network(path: str) -> type:
    """Execute the network source at ``path`` and return its ``UserModel`` class.

    Raises :class:`NetworkError` naming the user's line for errors in the source, or when ``UserModel`` is
    missing or is not a ``torch.nn.Module``.
    """
    with open(path) as f:
        source = f.read()
    namespace: dict[str, Any] = {
        "__name__": "digits_network",
        "__file__": path,
        "torch": torch,
        "nn": nn,
        "F": F,
        "digits": digits_helpers(),
    }
    try:
        # Compiled with the real path, so tracebacks and errors point at the user's file and line.
        exec(compile(source, path, "exec"), namespace)
    except Exception as exc:
        raise user_error(exc, path) from exc
    model = namespace.get("UserModel")
    if not isinstance(model, type) or not issubclass(model, nn.Module):
        raise NetworkError(f"{os.path.basename(path)} must define class UserModel(torch.nn.Module)")
    if model.forward is nn.Module.forward:
        raise NetworkError("UserModel must define forward(self, x)")
    return model


def build_model(model_class: type, path: str, **facts) -> nn.Module:
    """Construct ``model_class`` with the ``facts`` its ``__init__`` names (see the module's docstring); every
    fact becomes an attribute of the model unless ``__init__`` set it. NetworkError naming the user's line."""
    parameters = inspect.signature(model_class.__init__).parameters
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    missing = [
        name
        for name, p in list(parameters.items())[1:]
        if p.default is inspect.Parameter.empty
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and name not in facts
    ]
    if missing:
        raise network_error(
            f"UserModel.__init__ needs {', '.join(missing)}, which training does not provide; "
            f"it may take {', '.join(facts)}",
            path,
            first_line(model_class.__init__, path),
        )
    with building(path):
        model = model_class(**{k: v for k, v in facts.items() if takes_all or k in parameters})
    for name, value in facts.items():
        if not hasattr(model, name):
            setattr(model, name, value)
    return model


def first_line(function, path: str) -> int | None:
    """The line of ``path`` where ``function`` is defined, when it is defined there."""
    code = getattr(function, "__code__", None)
    return code.co_firstlineno if code is not None and code.co_filename == path else None


class Objective:
    """The loss and the reported scalars of a model: its own ``loss``/``metrics`` methods or the defaults, run
    inside :func:`building` and checked, so mistakes come back as NetworkError naming the user's line.

    ``trains`` is what training steps run the batches through instead of ``model`` (its DistributedDataParallel
    wrapper when several processes train); validation runs them through ``model`` itself."""

    def __init__(self, model: nn.Module, path: str, classification: bool, trains: nn.Module | None = None):
        self.model, self.path, self.classification = model, path, classification
        self.trains = model if trains is None else trains
        self.own_loss = callable(getattr(model, "loss", None))
        self.own_metrics = callable(getattr(model, "metrics", None))
        self.own_regularization = callable(getattr(model, "regularization", None))
        self.checked = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The model's output for ``x``."""
        with building(self.path):
            return (self.trains if self.model.training else self.model)(x)

    def loss(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The scalar loss of ``output`` against ``y``; the first call checks shapes, naming the user's line."""
        if not self.checked:
            self.check_output(output, y)
        with building(self.path):
            loss = self.model.loss(output, y) if self.own_loss else self.default_loss(output, y)
        if not self.checked:
            if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
                got = f"a tensor of shape {shape_text(loss)}" if isinstance(loss, torch.Tensor) else type(loss).__name__
                raise network_error(
                    f"loss must return a scalar tensor, got {got}; reduce it, e.g. with .mean()",
                    self.path,
                    first_line(self.model.loss, self.path),
                )
            self.checked = True
        return loss

    def regularization(self) -> torch.Tensor | None:
        """The model's ``regularization()`` term (a scalar tensor), or None when it defines none."""
        if not self.own_regularization:
            return None
        with building(self.path):
            term = self.model.regularization()
        if not isinstance(term, torch.Tensor) or term.dim() != 0:
            got = f"a tensor of shape {shape_text(term)}" if isinstance(term, torch.Tensor) else type(term).__name__
            raise network_error(
                f"regularization must return a scalar tensor, got {got}",
                self.path,
                first_line(self.model.regularization, self.path),
            )
        return term

    def metrics(self, output: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """The scalars the model reports for this batch (detached), by name."""
        with building(self.path), torch.no_grad():
            values = self.model.metrics(output, y) if self.own_metrics else self.default_metrics(output, y)
        if not isinstance(values, dict):
            raise network_error(
                f"metrics must return a dict of scalars, got {type(values).__name__}",
                self.path,
                first_line(self.model.metrics, self.path),
            )
        scalars = {}
        for name, value in values.items():
            value = torch.as_tensor(value).detach()
            if value.numel() != 1 or name == "loss":
                why = "'loss' is reported already" if name == "loss" else f"is {shape_text(value)}, not a scalar"
                raise network_error(f"metric {name!r} {why}", self.path, first_line(self.model.metrics, self.path))
            scalars[name] = value.reshape(()).float()
        return scalars

    def default_loss(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of logits for classification, else the mean squared error against ``y``."""
        return F.cross_entropy(output, y) if self.classification else F.mse_loss(output, y)

    def default_metrics(self, output: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """Accuracy for classification, nothing otherwise."""
        return {"accuracy": classification_accuracy(output, y)} if self.classification else {}

    def check_output(self, output: torch.Tensor, y: torch.Tensor) -> None:
        """Without the model's own loss, the output must fit the default one: NetworkError at ``forward``."""
        if self.own_loss:
            return
        line = first_line(type(self.model).forward, self.path)
        if not isinstance(output, torch.Tensor):
            raise network_error(f"forward must return a tensor, got {type(output).__name__}", self.path, line)
        if self.classification:
            nclasses = self.model.nclasses
            if output.dim() != 2 or output.shape[1] != nclasses:
                raise network_error(
                    f"the output of forward is {shape_text(output)}; classification into {nclasses} classes "
                    f"needs logits [batch, {nclasses}] (or define loss(output, y))",
                    self.path,
                    line,
                )
        elif output.shape != y.shape:
            raise network_error(
                f"the output of forward is {shape_text(output)} and the labels {shape_text(y)}; the default loss "
                "(mean squared error) needs the same shape (or define loss(output, y))",
                self.path,
                line,
            )


def shape_text(tensor: torch.Tensor) -> str:
    """``[batch, 10]``: a tensor's shape with its first dimension named as the batch."""
    dims = list(tensor.shape)
    return "[" + ", ".join(["batch", *map(str, dims[1:])] if dims else []) + "]"
