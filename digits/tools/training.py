"""What both training programs (``digits.tools.tensorflow.main``, ``digits.tools.torch.main``) share, with no
framework imported: the command line's common flags, the augmentation choices, the schedule of steps, epochs
and learning rates, the epochs of validations and snapshots, early stopping, SIGTERM, snapshot names and the
checks of the arguments against the databases. Each tool keeps what its framework does with them.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

import numpy as np

from digits.lr_policy import POLICIES, LRPolicy, parse_percents
from digits.tools.lmdb_info import LmdbInfo, mean_to_subtract
from digits.tools.protocol import emit
from digits.tools.user_errors import NetworkError, error_fields

SOLVERS = ("SGD", "MOMENTUM", "NESTEROV", "ADAGRAD", "ADAGRADDA", "ADADELTA", "ADAM", "RMSPROP", "FTRL")
REPORTS_PER_EPOCH = 4
REPORT_SECONDS = 10.0


class TrainingError(Exception):
    """Training cannot go on for a reason the user can act on (the message says what to change)."""


class Interrupted(Exception):
    """SIGTERM (the scheduler's abort) ended training at ``epoch``; ``--resume`` continues from the last snapshot."""

    def __init__(self, epoch: float):
        super().__init__(f"stopped by SIGTERM at epoch {epoch}")
        self.epoch = epoch


def log(message: str) -> None:
    """Write a line for the job log (stderr; stdout carries the protocol)."""
    print(message, file=sys.stderr, flush=True)


# --- The command line --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Words:
    """How a tool's help names its network class, its saved state and its trained tensors."""

    network: str  # "class UserModel(Tower)"
    snapshots: str  # "checkpoints" / "snapshots"
    snapshot: str  # "checkpoint" / "snapshot"
    weights: str  # what --weights takes
    tensors: str  # "variables" / "parameters"


def add_training_arguments(parser: argparse.ArgumentParser, words: Words) -> None:
    """Add the flags both training programs take, from ``--network`` to ``--patience``."""
    parser.add_argument("--network", required=True, help=f"network source: {words.network}")
    parser.add_argument("--train-db", required=True, help="training LMDB folder")
    parser.add_argument("--val-db", help="validation LMDB folder")
    parser.add_argument("--labels", help="labels.txt (one class name per line); default: from labels.npy")
    parser.add_argument("--mean", help="mean image (.npy, float32 HxWxC)")
    parser.add_argument("--subtract-mean", choices=("none", "image", "pixel"), default="none")
    parser.add_argument("--crop-size", type=int, help="random crop (train) / center crop (val) to NxN")
    parser.add_argument("--epochs", type=float, default=30.0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--batch-accumulation", type=int, default=1, help="batches whose gradients make one step")
    parser.add_argument("--solver", type=str.upper, choices=SOLVERS, default="SGD")
    parser.add_argument("--rms-decay", type=float, default=0.99)
    parser.add_argument("--momentum", type=float, default=0.9, help="for MOMENTUM and NESTEROV")
    parser.add_argument("--learning-rate", type=float, default=0.01)
    parser.add_argument("--lr-policy", choices=POLICIES, default="fixed")
    parser.add_argument("--lr-step-size", type=float, default=33.0, help="percent of training")
    parser.add_argument("--lr-gamma", type=float, default=0.1)
    parser.add_argument("--lr-power", type=float, default=1.0)
    parser.add_argument("--lr-multistep-values", default="50,85", help="comma list of percents of training")
    parser.add_argument("--snapshot-interval", type=float, default=1.0, help="epochs (0: only at the end)")
    parser.add_argument("--val-interval", type=float, default=1.0, help="epochs (0: only at the end)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--shuffle", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--save", default=".", help=f"folder of the {words.snapshots}")
    parser.add_argument("--tb-dir", default="tb", help="folder of the TensorBoard summaries")
    parser.add_argument("--weights", help=words.weights)
    parser.add_argument("--resume", action="store_true", help=f"continue from the latest {words.snapshot} in --save")
    parser.add_argument("--freeze", default="", help=f"comma list of regexes: matching {words.tensors} are not trained")
    add_augmentation_arguments(parser)
    parser.add_argument("--early-stopping-metric", help="e.g. val/loss or val/accuracy")
    parser.add_argument("--patience", type=int, default=5, help="validations without improvement before stopping")


def add_augmentation_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``--aug-*`` flags (training images only; :func:`augmentation_of` reads them)."""
    parser.add_argument("--aug-flip", choices=("none", "fliplr", "flipud", "fliplrud"), default="none")
    parser.add_argument("--aug-quad-rot", choices=("none", "rot90", "rot180", "rotall"), default="none")
    parser.add_argument("--aug-rot", type=float, default=0.0, help="random rotation, +- degrees")
    parser.add_argument("--aug-scale", type=float, default=0.0, help="stddev of a random scale factor around 1")
    parser.add_argument("--aug-noise", type=float, default=0.0, help="stddev of gaussian noise (fraction of 255)")
    parser.add_argument("--aug-contrast", type=float, default=0.0, help="contrast factor drawn from [1-c, 1+c]")
    parser.add_argument("--aug-whitening", action="store_true", help="per-image standardization instead of the mean")
    parser.add_argument("--aug-hsv", type=float, nargs=3, metavar=("H", "S", "V"), help="random HSV shifts")


# --- What the arguments and the databases decide, before any model ------------------------------------------


@dataclass
class AugmentationChoices:
    """Random changes to training images, as DIGITS' model form names them (all off by default); each tool's
    ``Augmentation`` adds ``apply``, the changes made with its framework."""

    flip: str = "none"  # none, fliplr, flipud, fliplrud
    quad_rot: str = "none"  # none, rot90 (0/90/270), rot180 (0/180), rotall (0/90/180/270)
    rotation: float = 0.0  # +- degrees
    scale: float = 0.0  # stddev of the scale factor around 1
    noise: float = 0.0  # stddev of gaussian noise, as a fraction of the pixel range
    contrast: float = 0.0  # contrast factor drawn from [1 - c, 1 + c]
    whitening: bool = False  # per-image standardization (replaces mean subtraction)
    hsv: tuple[float, float, float] | None = None  # hue, saturation, value shifts (color images)

    QUARTER_TURNS = {"rot90": [0, 1, 3], "rot180": [0, 2], "rotall": [0, 1, 2, 3]}

    @property
    def moves_pixels(self) -> bool:
        """Whether pixels change place (flips, turns, rotation, scale), which a label array would have to follow."""
        return self.flip != "none" or self.quad_rot != "none" or bool(self.rotation) or bool(self.scale)

    def check(self, shape: list[int]) -> None:
        """Raise ValueError for choices these images cannot take."""
        if self.quad_rot in ("rot90", "rotall") and shape[0] != shape[1]:
            raise ValueError(f"rotating by 90 degrees needs square images; these are {shape[0]}x{shape[1]}")
        if self.hsv and shape[2] != 3:
            raise ValueError("HSV shifting needs color images")


A = TypeVar("A", bound=AugmentationChoices)


def augmentation_of(args: argparse.Namespace, shape: list[int], kind: Callable[..., A]) -> A:
    """The training augmentation (of class ``kind``) the arguments ask for; TrainingError when the images
    cannot take it."""
    augmentation = kind(
        flip=args.aug_flip, quad_rot=args.aug_quad_rot, rotation=args.aug_rot, scale=args.aug_scale,
        noise=args.aug_noise, contrast=args.aug_contrast, whitening=args.aug_whitening,
        hsv=tuple(args.aug_hsv) if args.aug_hsv and any(args.aug_hsv) else None,
    )  # fmt: skip
    try:
        augmentation.check(shape)
    except ValueError as exc:
        raise TrainingError(str(exc)) from None
    return augmentation


def check_arguments(
    args: argparse.Namespace, train: LmdbInfo, val: LmdbInfo | None, augmentation: AugmentationChoices
) -> None:
    """Raise TrainingError for a batch, crop or augmentation these databases cannot take."""
    if args.batch_size > train.entries:
        raise TrainingError(
            f"the batch size ({args.batch_size}) is larger than the training set ({train.entries} images)"
        )
    if train.label.kind == "array" and (args.crop_size or augmentation.moves_pixels):
        raise TrainingError("crops, flips and rotations would move images away from their label arrays: turn them off")
    if args.crop_size and args.crop_size > min(train.shape[:2]):
        raise TrainingError(f"the crop size ({args.crop_size}) is larger than the images {train.shape[:2]}")
    if val and val.shape != train.shape:
        raise TrainingError(f"validation images are {val.shape}, training images {train.shape}")


def learning_rate_policy(args: argparse.Namespace) -> LRPolicy:
    """The ``--lr-*`` flags as a policy; TrainingError for multistep values that are not percents."""
    try:
        multistep = parse_percents(args.lr_multistep_values)
    except ValueError as exc:
        raise TrainingError(f"--lr-multistep-values: {exc}") from None
    return LRPolicy(
        policy=args.lr_policy,
        base_lr=args.learning_rate,
        step_size=args.lr_step_size,
        gamma=args.lr_gamma,
        power=args.lr_power,
        multistep_values=multistep,
    )


def load_mean(args: argparse.Namespace, shape: list[int]) -> np.ndarray | None:
    """The mean to subtract: HxWxC for ``image``, C for ``pixel``, None for ``none`` or when there is none."""
    if args.subtract_mean == "none":
        return None
    if not args.mean:
        log(f"--subtract-mean {args.subtract_mean} without --mean: no mean is subtracted")
        return None
    try:
        return mean_to_subtract(args.mean, args.subtract_mean, shape)
    except ValueError as exc:
        raise TrainingError(str(exc)) from None


def count_classes(args: argparse.Namespace) -> int:
    """Classes of a classification dataset (0 for datasets of other labels)."""
    if args.labels:
        with open(args.labels) as f:
            return sum(1 for line in f if line.strip())
    labels = os.path.join(args.train_db, "labels.npy")
    return int(np.load(labels).max()) + 1 if os.path.exists(labels) else 0


@dataclass(frozen=True)
class Schedule:
    """When things happen in a run of ``epochs`` over ``entries`` images, ``images_per_step`` images a step."""

    epochs: float
    entries: int
    images_per_step: int
    policy: LRPolicy

    @property
    def total_steps(self) -> int:
        """Steps of the whole run from epoch 0 (at least one)."""
        return max(1, math.ceil(self.epochs * self.entries / self.images_per_step))

    @property
    def report_every(self) -> int:
        """Steps between two reports of the training metrics (``REPORTS_PER_EPOCH`` an epoch)."""
        return max(1, int(self.entries / self.images_per_step / REPORTS_PER_EPOCH))

    def epoch_of(self, step: int) -> float:
        """The epoch reached after ``step`` steps, rounded to 4 decimals and at most ``epochs``."""
        return round(min(step * self.images_per_step / self.entries, self.epochs), 4)

    def learning_rate(self, step: int) -> float:
        """The learning rate of the step that follows ``step`` done steps."""
        return self.policy.rate(100.0 * step / self.total_steps)


def schedule_of(args: argparse.Namespace, train: LmdbInfo) -> Schedule:
    """The schedule the arguments ask for over the training database ``train``."""
    return Schedule(args.epochs, train.entries, args.batch_size * args.batch_accumulation, learning_rate_policy(args))


# --- One step, and what happens after it --------------------------------------------------------------------


@dataclass
class StepEnd:
    """A finished step as the callbacks see it; one may set ``stop`` to end training after this step.

    ``values`` are each batch's scalars (numbers or the framework's tensors); ``summaries`` the network's other
    summaries where the framework has them."""

    step: int
    epoch: float
    at_end: bool
    learning_rate: float
    values: list[dict]
    report: bool
    summaries: object | None = None
    stop: bool = False


class Callback(Protocol):
    """What the loop calls after every step, in order (Keras' callbacks, reduced to the one hook training needs)."""

    def on_step_end(self, end: StepEnd) -> None: ...


class Interval:
    """Epochs every ``every`` epochs (none when 0) after ``epoch``, the epoch training starts from."""

    def __init__(self, every: float, epoch: float):
        self.every = every
        self.next = (math.floor(epoch / every + 1e-9) + 1) * every if every else None

    def due(self, epoch: float) -> bool:
        """Whether ``epoch`` has reached the next scheduled epoch."""
        return self.next is not None and epoch >= self.next - 1e-9

    def take(self, epoch: float) -> float:
        """Move past the scheduled epochs that ``epoch`` has reached; returns the last of them (``epoch`` itself
        when none), the label of what is done now."""
        label = epoch
        while self.next is not None and self.next <= epoch + 1e-9:
            label = round(self.next, 6)
            self.next += self.every
        return label


class EarlyStopping:
    """Tracks one metric over validations; ``update`` says when it has not improved for ``patience`` of them."""

    def __init__(self, metric: str, patience: int):
        self.stage, _, self.name = metric.partition("/") if "/" in metric else ("val", "", metric)
        self.metric = f"{self.stage}/{self.name}"
        self.lower_is_better = "loss" in self.name or "error" in self.name
        self.patience = patience
        self.best: float | None = None
        self.best_epoch: float | None = None
        self.bad = 0

    def update(self, epoch: float, values: dict[str, float]) -> tuple[bool, bool]:
        """Record a validation; returns ``(improved, stop)``."""
        value = values.get(self.name)
        if value is None:
            reported = ", ".join(f"val/{name}" for name in values)
            raise TrainingError(f"early stopping on {self.metric}: the network reports no such metric ({reported})")
        better = self.best is None or (value < self.best if self.lower_is_better else value > self.best)
        if better:
            self.best, self.best_epoch, self.bad = value, epoch, 0
        else:
            self.bad += 1
        return better, self.bad >= self.patience

    def after_validation(self, epoch: float, values: dict[str, float]) -> bool:
        """Record the validation of ``epoch``, emitting each new best as a ``result``; returns whether training
        stops (and logs why)."""
        improved, stop = self.update(epoch, values)
        if improved:
            emit("result", best_epoch=self.best_epoch, best_value=self.best, best_metric=self.metric)
        if stop:
            log(f"early stopping: {self.metric} has not improved for {self.patience} validations")
        return stop


def early_stopping_of(args: argparse.Namespace) -> EarlyStopping | None:
    """The early stopping ``--early-stopping-metric`` asks for, or None."""
    return EarlyStopping(args.early_stopping_metric, args.patience) if args.early_stopping_metric else None


def snapshot_name(epoch: float, suffix: str) -> str:
    """The name of the snapshot of ``epoch``: ``snapshot_2.0`` + ``suffix`` (``.ckpt``, ``.pt``)."""
    return f"snapshot_{round(epoch, 3)}{suffix}"


def display_path(path: str) -> str:
    """``path`` relative to the working directory when it is under it (the job directory)."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


class Stop:
    """Set by SIGTERM (the scheduler's abort); the loop ends after the step (or validation) in progress."""

    requested = False

    @classmethod
    def install(cls) -> None:
        """Make SIGTERM set ``Stop.requested``."""

        def handler(signum, frame):
            cls.requested = True

        signal.signal(signal.SIGTERM, handler)

    @classmethod
    def check(cls, epoch: float) -> None:
        """Raise :class:`Interrupted` at ``epoch`` when SIGTERM has arrived."""
        if cls.requested:
            raise Interrupted(epoch)


def run_training(
    train: Callable[[], int], framework_errors: type[BaseException], translate: Callable[[BaseException], Exception]
) -> int:
    """Run ``train`` as a tool's ``main`` does; returns the exit status: 0 when done, 1 after an ``error`` event
    for what the user can fix, 143 when SIGTERM stopped training.

    The framework's own ``framework_errors`` (a failing graph op, out of GPU memory) are first made into what
    the user reads by ``translate`` (a NetworkError naming their line, or a TrainingError saying what to change).
    """
    Stop.install()
    try:
        try:
            return train()
        except framework_errors as exc:
            raise translate(exc) from exc
    except Interrupted as stop:
        log(f"{stop}; resume continues from the last snapshot")
        return 143
    except (NetworkError, TrainingError, FileNotFoundError) as exc:
        emit("error", **error_fields(exc))
        log(str(exc))
        return 1
