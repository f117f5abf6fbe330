"""Learning-rate policies, as DIGITS defined them: a function of how far training is, in percent.

One implementation serves the form's preview and the training program, so the preview is what trains.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

POLICIES = ("fixed", "step", "multistep", "exp", "inv", "poly", "sigmoid")


@dataclass
class LRPolicy:
    """``policy`` and its parameters; step sizes and multistep values are percents of training."""

    policy: str = "step"
    base_lr: float = 0.01
    step_size: float = 33.0
    gamma: float = 0.1
    power: float = 1.0
    multistep_values: list[float] = field(default_factory=lambda: [50.0, 85.0])

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"unknown learning rate policy {self.policy!r}; use one of {', '.join(POLICIES)}")

    def rate(self, percent: float) -> float:
        """The learning rate when ``percent`` (0 to 100) of training is done."""
        x = min(max(percent, 0.0), 100.0)
        lr = self.base_lr
        if self.policy == "fixed":
            return lr
        if self.policy == "step":
            return lr * self.gamma ** math.floor(x / self.step_size) if self.step_size > 0 else lr
        if self.policy == "multistep":
            return lr * self.gamma ** sum(1 for v in self.multistep_values if v <= x)
        if self.policy == "exp":
            return lr * self.gamma**x
        if self.policy == "inv":
            return lr * (1 + self.gamma * x) ** (-self.power)
        if self.policy == "poly":
            return lr * (1 - x / 100.0) ** self.power
        return lr / (1 + math.exp(self.gamma * (x - self.step_size)))  # sigmoid

    def curve(self, epochs: float, points: int = 101) -> dict[str, list[float]]:
        """``{"epochs": [...], "lr": [...]}`` over the whole training, for the form's chart."""
        xs = [100.0 * i / (points - 1) for i in range(points)]
        return {"epochs": [epochs * x / 100.0 for x in xs], "lr": [self.rate(x) for x in xs]}


def parse_percents(text: str) -> list[float]:
    """``"50, 85"`` -> ``[50.0, 85.0]``; raises ValueError naming the bad value."""
    values = []
    for part in (text or "").split(","):
        if part.strip():
            try:
                values.append(float(part))
            except ValueError:
                raise ValueError(f"{part.strip()!r} is not a number") from None
    return values
