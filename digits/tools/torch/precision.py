"""Automatic mixed precision (``--precision``): fp32, or the forward pass and the loss autocast to bf16 or fp16.

The weights, their gradients and the optimizer stay fp32 whatever the choice; snapshots are the same. fp16
needs a CUDA GPU and scales the loss (``torch.amp.GradScaler``) so small gradients survive; bf16 has fp32's
range, needs no scaling, and runs on the CPU too.
"""

from __future__ import annotations

import contextlib

import torch

from digits.tools.training import TrainingError

PRECISIONS = ("fp32", "bf16", "fp16")
DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class Precision:
    """How training and validation compute on ``device``: ``autocast()`` around the forward pass and the
    loss, ``backward(loss)`` and ``step(optimizer)`` (which scale the loss for fp16)."""

    def __init__(self, name: str, device: torch.device):
        self.name, self.device, self.dtype = name, device, DTYPES[name]
        self.scaler = torch.amp.GradScaler(device.type) if name == "fp16" else None

    def autocast(self) -> contextlib.AbstractContextManager:
        """The context in which the network's forward pass and loss run."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        """Backpropagate ``loss`` (scaled for fp16)."""
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """Apply the gradients; with fp16, unscaled first, and skipped when they overflowed (the scale then
        shrinks)."""
        if self.scaler is None:
            optimizer.step()
            return
        self.scaler.step(optimizer)
        self.scaler.update()

    def state_dict(self) -> dict | None:
        """What a snapshot keeps so that a resumed run goes on with the same loss scale (None without one)."""
        return None if self.scaler is None else self.scaler.state_dict()

    def load_state_dict(self, state: dict | None) -> None:
        """Take back a snapshot's loss scale, when both it and this run scale the loss."""
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)


def precision_for(name: str, device: torch.device) -> Precision:
    """The precision ``--precision`` asks for on ``device``; TrainingError when the device cannot compute it."""
    if name == "fp16" and device.type != "cuda":
        raise TrainingError(
            "--precision fp16 needs a CUDA GPU, and this job trains on the CPU: choose bf16 (mixed precision that "
            "runs on the CPU) or fp32, or give the job a GPU"
        )
    if name == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise TrainingError(
            f"--precision bf16: {torch.cuda.get_device_name(device)} does not compute in bf16; choose fp16 or fp32"
        )
    return Precision(name, device)
