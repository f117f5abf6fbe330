"""The solvers of the model form as PyTorch optimizers.

Seven map to ``torch.optim`` with TensorFlow 1's defaults where the two differ (Adagrad's initial accumulator
0.1, Adadelta's rho 0.95 and epsilon 1e-8). PyTorch has no Adagrad dual averaging and no FTRL, so
:class:`AdagradDA` and :class:`Ftrl` below implement TensorFlow's update rules (without their L1/L2 options,
which the form does not offer). RMSProp differs in a detail: PyTorch adds epsilon (1e-8) after the square root,
TensorFlow (1e-10) inside it.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable

import torch

SOLVERS = ("SGD", "MOMENTUM", "NESTEROV", "ADAGRAD", "ADAGRADDA", "ADADELTA", "ADAM", "RMSPROP", "FTRL")
INITIAL_ACCUMULATOR = 0.1  # TensorFlow's, for Adagrad, Adagrad DA and FTRL


class AdagradDA(torch.optim.Optimizer):
    """Adagrad dual averaging as ``tf.compat.v1.train.AdagradDAOptimizer`` applies it (no L1/L2): each weight is
    ``-lr * sum(g) / sqrt(0.1 + sum(g^2))``, the sums over every step so far. The starting weights only matter
    until the first step, as in TensorFlow."""

    def __init__(self, params: Iterable, lr: float):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        """Apply one update from the parameters' gradients."""
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["gradient_sum"] = torch.zeros_like(p)
                    state["squared_sum"] = torch.full_like(p, INITIAL_ACCUMULATOR)
                state["gradient_sum"].add_(p.grad)
                state["squared_sum"].addcmul_(p.grad, p.grad)
                p.copy_(-group["lr"] * state["gradient_sum"] / state["squared_sum"].sqrt())
        return loss


class Ftrl(torch.optim.Optimizer):
    """FTRL-Proximal as ``tf.compat.v1.train.FtrlOptimizer`` applies it with its defaults (learning-rate power
    -0.5, no L1/L2): a per-weight rate ``lr / sqrt(n)`` from the summed squared gradients ``n``, and weights
    ``-z * lr / sqrt(n)`` from the linear term ``z``."""

    def __init__(self, params: Iterable, lr: float):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        """Apply one update from the parameters' gradients."""
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            lr = group["lr"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["accumulator"] = torch.full_like(p, INITIAL_ACCUMULATOR)
                    state["linear"] = torch.zeros_like(p)
                accumulator, linear, g = state["accumulator"], state["linear"], p.grad
                updated = accumulator + g * g
                sigma = (updated.sqrt() - accumulator.sqrt()) / lr
                linear.add_(g - sigma * p)
                accumulator.copy_(updated)
                p.copy_(-linear * lr / updated.sqrt())
        return loss


def make_optimizer(args: argparse.Namespace, params: list) -> torch.optim.Optimizer:
    """The optimizer for ``--solver`` over ``params``, at ``--learning-rate`` (the schedule sets it per step)."""
    lr = args.learning_rate
    return {
        "SGD": lambda: torch.optim.SGD(params, lr=lr),
        "MOMENTUM": lambda: torch.optim.SGD(params, lr=lr, momentum=args.momentum),
        "NESTEROV": lambda: torch.optim.SGD(params, lr=lr, momentum=args.momentum, nesterov=True),
        "ADAGRAD": lambda: torch.optim.Adagrad(params, lr=lr, initial_accumulator_value=INITIAL_ACCUMULATOR),
        "ADAGRADDA": lambda: AdagradDA(params, lr=lr),
        "ADADELTA": lambda: torch.optim.Adadelta(params, lr=lr, rho=0.95, eps=1e-8),
        "ADAM": lambda: torch.optim.Adam(params, lr=lr),
        "RMSPROP": lambda: torch.optim.RMSprop(params, lr=lr, alpha=args.rms_decay),
        "FTRL": lambda: Ftrl(params, lr=lr),
    }[args.solver]()
