"""Train a PyTorch network from a dataset's LMDB databases, speaking the JSON-lines protocol.

    python -m digits.tools.torch.main --network network.py --train-db DIR [--val-db DIR]
        [--labels labels.txt] [--mean mean.npy --subtract-mean none|image|pixel] [--crop-size N]
        [--epochs F] [--batch-size N] [--batch-accumulation N] [--solver SGD|MOMENTUM|NESTEROV|ADAGRAD|
        ADAGRADDA|ADADELTA|ADAM|RMSPROP|FTRL] [--rms-decay F] [--momentum F] [--learning-rate F]
        [--lr-policy fixed|step|multistep|exp|inv|poly|sigmoid] [--lr-step-size PCT] [--lr-gamma F]
        [--lr-power F] [--lr-multistep-values PCT,PCT] [--snapshot-interval F] [--val-interval F] [--seed N]
        [--shuffle|--no-shuffle] [--save DIR] [--tb-dir DIR] [--weights SNAPSHOT] [--resume]
        [--freeze REGEX,REGEX] [--aug-* ...] [--early-stopping-metric val/loss --patience N]
        [--processes N] [--precision fp32|bf16|fp16]

The command line is the TensorFlow tool's (``digits.tools.tensorflow.main``); so are the events on stdout:

- ``{"event": "progress", "done": step, "total": steps, "epoch": e}``;
- ``{"event": "metrics", "epoch": 1.25, "train": {"loss": .., "accuracy": ..}, "lr": ..}`` a few times an epoch,
  averaged over the steps since the last one; every scalar of the network's ``metrics`` is a key;
- ``{"event": "metrics", "epoch": 2.0, "val": {...}}`` after each validation;
- ``{"event": "snapshot", "epoch": 2.0, "path": "snapshot_2.0.pt"}`` (relative to the working directory when
  under it): a ``torch.save`` dict of ``model`` (the state dict), ``optimizer``, ``step``, ``epoch``, ``facts``;
- ``{"event": "result", ...}``: ``weights`` (restored/new/mismatched tensors), ``frozen``, ``best_epoch``,
  and at the end ``epochs_done``, ``images_per_second``, ``stopped_early``;
- ``{"event": "error", "message": ...}``: the user's file and line for errors in the network source.

The network contract: a source defining ``class UserModel(torch.nn.Module)``, built with keyword arguments
``input_shape`` ([H, W, C]), ``nclasses`` and ``is_inference`` (those its ``__init__`` names); ``forward(x)`` takes
NCHW float32 batches; optional ``loss(output, y)`` (default: cross-entropy for classification, MSE otherwise),
``metrics(output, y) -> {name: scalar}`` (default: ``accuracy`` for classification), plotted for training and
validation, and ``regularization()`` (weight decay, optimized in training steps, not reported).
``self.training`` tells training steps from validation. Details: :mod:`digits.tools.torch.network` and
``docs/pytorch.md``.

Devices: one process per GPU that ``CUDA_VISIBLE_DEVICES`` leaves visible, data-parallel
(DistributedDataParallel over nccl, started by this program, :mod:`digits.tools.torch.distributed`) when there
are several; on a machine without a GPU, one process on the CPU, or ``--processes N`` (gloo). ``--batch-size`` is
the batch of a whole step, shared out among the processes, so the schedule and the learning rate mean what they
mean for one process. ``--precision bf16|fp16`` autocasts the forward pass and the loss
(:mod:`digits.tools.torch.precision`). SIGTERM stops after the current step; ``--resume`` continues from the latest
snapshot of ``--save``, optimizer state and epoch included. TensorFlow is never imported.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import math
import os
import re
import sys
import time
import types
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

# TensorBoard's writer imports TensorFlow when it is installed unless this module exists (its no-TF switch).
sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.tensorboard import SummaryWriter  # noqa: E402

from digits.tools.lmdb_info import LmdbInfo, db_info  # noqa: E402
from digits.tools.protocol import ProgressReporter, emit, run_tool  # noqa: E402
from digits.tools.torch.data import (  # noqa: E402
    Augmentation,
    Batches,
    Prepare,
    Records,
)
from digits.tools.torch.distributed import Ranks, is_rank, launch  # noqa: E402
from digits.tools.torch.network import Objective, build_model, load_network  # noqa: E402
from digits.tools.torch.optimizers import make_optimizer  # noqa: E402
from digits.tools.torch.precision import PRECISIONS, Precision, precision_for  # noqa: E402
from digits.tools.training import (  # noqa: E402
    REPORT_SECONDS,
    Callback,
    EarlyStopping,
    Interrupted,
    Interval,
    Schedule,
    StepEnd,
    Stop,
    TrainingError,
    Words,
    add_training_arguments,
    augmentation_of,
    check_arguments,
    count_classes,
    display_path,
    early_stopping_of,
    load_mean,
    log,
    run_training,
    schedule_of,
    snapshot_name,
)

SNAPSHOT_PATTERN = re.compile(r"snapshot_(\d+(?:\.\d+)?)\.pt$")


# --- The command line --------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The parser of the training program's command line: the TensorFlow tool's flags."""
    parser = argparse.ArgumentParser(prog="python -m digits.tools.torch.main", description=__doc__.splitlines()[0])
    add_training_arguments(
        parser,
        Words(
            network="class UserModel(torch.nn.Module)",
            snapshots="snapshots",
            snapshot="snapshot",
            weights="snapshot (.pt, or a folder of them) or state dict to restore by name",
            tensors="parameters",
        ),
    )
    # --cpu-towers: the TensorFlow tool's name for trying data parallelism on the CPU.
    parser.add_argument(
        "--processes", "--cpu-towers", type=int,
        help="training processes (DistributedDataParallel), each with its share of every batch; default: one per "
        "visible GPU, one on the CPU; more than one on the CPU trains over gloo",
    )  # fmt: skip
    parser.add_argument(
        "--precision", choices=PRECISIONS, default="fp32",
        help="automatic mixed precision of the forward pass and loss (fp16 needs a GPU)",
    )  # fmt: skip
    return parser


# --- What the arguments and the databases decide, before any model ------------------------------------------


@dataclass(frozen=True)
class Plan:
    """The run the arguments ask for, checked against the network and the databases."""

    network: type
    train: LmdbInfo
    val: LmdbInfo | None
    schedule: Schedule
    mean: np.ndarray | None
    augmentation: Augmentation
    nclasses: int | None
    early: EarlyStopping | None
    crop_size: int | None = None

    @property
    def input_shape(self) -> list[int]:
        """``[H, W, C]`` of the images the network gets (after cropping)."""
        crop = self.crop_size
        return [crop, crop, self.train.shape[2]] if crop else list(self.train.shape)

    @property
    def classification(self) -> bool:
        """Whether labels are classes (so the default loss is the cross-entropy)."""
        return self.train.label.kind == "class" and bool(self.nclasses)


def plan_training(args: argparse.Namespace) -> Plan:
    """Load the network and the databases' facts and check the arguments against them; returns the plan.

    Raises TrainingError (or NetworkError, for the network's source) saying what to change.
    """
    if args.batch_size < 1 or args.batch_accumulation < 1:
        raise TrainingError("the batch size and batch accumulation must be at least 1")
    network = load_network(args.network)
    try:
        train_info = db_info(args.train_db)
        val_info = db_info(args.val_db) if args.val_db else None
    except ValueError as exc:
        raise TrainingError(str(exc)) from None
    augmentation = augmentation_of(args, train_info.shape, Augmentation)
    check_arguments(args, train_info, val_info, augmentation)
    schedule = schedule_of(args, train_info)
    mean = load_mean(args, train_info.shape)
    early = early_stopping_of(args)
    nclasses = count_classes(args) or None
    return Plan(network, train_info, val_info, schedule, mean, augmentation, nclasses, early, args.crop_size)


# --- The device and the model --------------------------------------------------------------------------------


def processes_of(args: argparse.Namespace) -> int:
    """How many processes train: ``--processes``, else one per GPU that ``CUDA_VISIBLE_DEVICES`` leaves visible
    (one without a GPU). TrainingError for more processes than GPUs or than images in a batch."""
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    processes = args.processes or max(gpus, 1)
    if processes < 1:
        raise TrainingError("--processes must be at least 1")
    if gpus and processes > gpus:
        raise TrainingError(f"--processes {processes}: this job sees {gpus} GPUs, and each process trains on one")
    if gpus > processes:
        log(f"{gpus} GPUs visible: {processes} of them train (--processes {processes})")
    if processes > args.batch_size:
        raise TrainingError(
            f"the batch size ({args.batch_size}) is smaller than the {processes} training processes, which each "
            "take their share of every batch"
        )
    return processes


def training_device(ranks: Ranks) -> torch.device:
    """This rank's GPU (the first visible one for a single process), else the CPU, whose cores the ranks share;
    logs which."""
    if torch.cuda.is_available():
        torch.cuda.set_device(ranks.rank)
        log(f"training on cuda:{ranks.rank} ({torch.cuda.get_device_name(ranks.rank)})")
        return torch.device("cuda", ranks.rank)
    if ranks.distributed:
        torch.set_num_threads(max(1, torch.get_num_threads() // ranks.world))
    log(f"training on the CPU ({torch.get_num_threads()} threads)")
    return torch.device("cpu")


def seed_everything(seed: int | None, device: torch.device) -> None:
    """With a seed, make runs repeatable (same initial weights, same order, deterministic kernels); without,
    let cuDNN pick its fastest kernels."""
    if seed is None:
        torch.backends.cudnn.benchmark = device.type == "cuda"
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS reads it when CUDA starts
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False


def split_frozen(model: nn.Module, patterns: str) -> tuple[list[nn.Parameter], list[str]]:
    """The parameters that ``--freeze`` (a comma list of regexes on names like ``conv1.weight``) leaves to
    train, and the names of those it freezes (which stop requiring gradients). TrainingError for a bad regex."""
    parts = [p.strip() for p in patterns.split(",") if p.strip()]
    try:
        freeze = re.compile("|".join(f"(?:{p})" for p in parts)) if parts else None
    except re.error as exc:
        raise TrainingError(f"--freeze: {exc}") from None
    trainable, frozen = [], []
    for name, parameter in model.named_parameters():
        if freeze and freeze.search(name):
            parameter.requires_grad_(False)
            frozen.append(name)
        elif parameter.requires_grad:
            trainable.append(parameter)
    if not trainable:
        raise TrainingError("nothing to train: every parameter is frozen" if frozen else "the network has no weights")
    return trainable, frozen


# --- Where training starts from -----------------------------------------------------------------------------


def latest_snapshot(folder: str) -> str | None:
    """The snapshot of the latest epoch in ``folder``, or None."""
    found = [(float(m.group(1)), path) for path in glob.glob(os.path.join(folder, "snapshot_*.pt"))
             if (m := SNAPSHOT_PATTERN.search(os.path.basename(path)))]  # fmt: skip
    return max(found)[1] if found else None


def is_tensorflow_checkpoint(path: str) -> bool:
    """Whether ``path`` is a TensorFlow checkpoint (a prefix with an ``.index`` file, or a folder holding one)."""
    if os.path.isdir(path):
        return bool(glob.glob(os.path.join(path, "*.ckpt.index"))) or os.path.exists(os.path.join(path, "checkpoint"))
    return os.path.exists(path + ".index") or path.endswith((".ckpt", ".index", ".data-00000-of-00001"))


def read_snapshot(path: str, flag: str) -> dict:
    """The dict saved at ``path`` (a snapshot of ours, or a bare state dict as ``{"model": ...}``), on the CPU.

    TrainingError naming ``flag`` for a TensorFlow checkpoint or a file that is not PyTorch weights.
    """
    if is_tensorflow_checkpoint(path):
        raise TrainingError(
            f"{flag}: {path} is a TensorFlow checkpoint; a PyTorch network starts from PyTorch weights "
            "(a snapshot_*.pt of a PyTorch model, or a saved state dict)"
        )
    try:
        # weights_only: a snapshot offered as a start is data, never code to run.
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same problem for the user
        raise TrainingError(f"{flag}: cannot read {path} as PyTorch weights: {exc}") from None
    if isinstance(saved, dict) and isinstance(saved.get("model"), dict):
        return saved
    if isinstance(saved, dict) and saved and all(isinstance(v, torch.Tensor) for v in saved.values()):
        return {"model": saved}
    raise TrainingError(f"{flag}: {path} holds no state dict")


def resume(args: argparse.Namespace, model: nn.Module, optimizer: torch.optim.Optimizer, precision: Precision) -> int:
    """Load the latest snapshot of ``--save`` into the model, the optimizer and the loss scale; returns its step."""
    path = latest_snapshot(args.save)
    if path is None:
        if is_tensorflow_checkpoint(args.save):
            read_snapshot(args.save, "--resume")  # raises, naming the other framework
        raise TrainingError(f"nothing to resume: no snapshot in {os.path.abspath(args.save)}")
    saved = read_snapshot(path, "--resume")
    try:
        model.load_state_dict(saved["model"])
        if "optimizer" in saved:
            optimizer.load_state_dict(saved["optimizer"])
        precision.load_state_dict(saved.get("scaler"))
    except (RuntimeError, ValueError, KeyError) as exc:
        raise TrainingError(f"--resume: {path} does not fit this network and solver: {exc}") from None
    log(f"resumed from {display_path(path)}")
    return int(saved.get("step", 0))


def restore_weights(path: str, model: nn.Module) -> dict:
    """Copy the tensors that ``path`` holds under the same name and shape into the model; returns what was done
    (the ``weights`` result: ``checkpoint``, ``restored``, ``new``, ``mismatched``)."""
    if os.path.isdir(path) and not is_tensorflow_checkpoint(path):
        latest = latest_snapshot(path)
        if latest is None:
            raise TrainingError(f"--weights: no snapshot in {path}")
        path = latest
    saved = read_snapshot(path, "--weights")["model"]
    own = model.state_dict()
    restored, new, mismatched = {}, [], []
    for name, tensor in own.items():
        if name not in saved:
            new.append(name)
        elif tuple(saved[name].shape) != tuple(tensor.shape):
            mismatched.append(f"{name} {list(saved[name].shape)} -> {list(tensor.shape)}")
        else:
            restored[name] = saved[name]
    model.load_state_dict(restored, strict=False)
    return {"checkpoint": display_path(path), "restored": sorted(restored), "new": new, "mismatched": mismatched}


def start_from(args: argparse.Namespace, model: nn.Module, optimizer, precision: Precision, frozen: list[str]) -> int:
    """Start from scratch, from the latest snapshot (``--resume``) or from ``--weights`` by name; logs (and emits)
    what was restored and what is frozen. Returns the number of steps already done."""
    step = 0
    if args.resume:
        step = resume(args, model, optimizer, precision)
    elif args.weights:
        report = restore_weights(args.weights, model)
        log(f"restored from {report['checkpoint']}: {', '.join(report['restored']) or 'nothing'}")
        log(f"new (initialized): {', '.join(report['new']) or 'none'}")
        if report["mismatched"]:
            log(f"not restored, shape differs: {', '.join(report['mismatched'])}")
        emit("result", weights=report)
    if frozen:
        log(f"frozen (not trained): {', '.join(frozen)}")
        emit("result", frozen=frozen)
    elif args.freeze:
        log(f"--freeze {args.freeze!r} matches no parameter")
    return step


# --- One step, and what happens after it --------------------------------------------------------------------


class Trainer:
    """The objective (the model and what training steps run it through), its optimizer and the batches:
    ``step(lr)`` trains on ``accumulation`` batches and applies their averaged gradients; ``validate()`` runs
    over this rank's part of the validation set. ``precision`` says how both compute."""

    def __init__(self, objective: Objective, optimizer, prepare: Prepare, batches: Iterator, accumulation: int,
                 precision: Precision, ranks: Ranks):  # fmt: skip
        self.objective, self.model, self.optimizer, self.prepare = objective, objective.model, optimizer, prepare
        self.batches, self.accumulation, self.precision, self.ranks = batches, accumulation, precision, ranks

    def step(self, learning_rate: float) -> list[dict[str, torch.Tensor]]:
        """One optimizer step; returns each batch's detached scalars (``loss`` and the metrics), on the device,
        so reading them (a device sync) waits for the reports."""
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate
        self.optimizer.zero_grad(set_to_none=True)
        values = []
        for index in range(self.accumulation):
            images, labels = next(self.batches)
            x, y = self.prepare(images, labels, training=True)
            with self.gradients_averaged(index == self.accumulation - 1):
                with self.precision.autocast():
                    output = self.objective.forward(x)
                    loss = self.objective.loss(output, y)
                # Weight decay is optimized, not reported: "loss" stays the network's loss, as in TensorFlow.
                regularization = self.objective.regularization()
                total = loss if regularization is None else loss + regularization
                self.precision.backward(total / self.accumulation if self.accumulation > 1 else total)
            values.append({"loss": loss.detach().float(), **self.objective.metrics(output, y)})
        self.precision.step(self.optimizer)
        return values

    def gradients_averaged(self, last: bool) -> contextlib.AbstractContextManager:
        """Around a batch's backward pass: the processes average their gradients after the last batch of a step
        only, not after each batch accumulated before it."""
        trains = self.objective.trains
        return trains.no_sync() if not last and trains is not self.model else contextlib.nullcontext()

    def validate(self, batches: Batches) -> dict[str, float]:
        """Every scalar averaged over the validation images of all ranks (``loss`` and the metrics); stops early
        on SIGTERM."""
        self.model.eval()
        sums: dict[str, torch.Tensor] = {}
        count = 0
        try:
            with torch.no_grad():
                for images, labels in batches:
                    if Stop.requested:
                        break
                    x, y = self.prepare(images, labels, training=False)
                    with self.precision.autocast():
                        output = self.objective.forward(x)
                        values = {"loss": self.objective.loss(output, y), **self.objective.metrics(output, y)}
                    for name, value in values.items():
                        sums[name] = sums.get(name, 0.0) + value.float() * len(images)
                    count += len(images)
        finally:
            self.model.train()
        totals: dict[str, float] = {}
        images = 0
        # A rank may have validated nothing (stopped, or fewer records than ranks): gathered as dicts, not summed.
        for part_sums, part_count in self.ranks.gather(({name: float(v) for name, v in sums.items()}, count)):
            for name, value in part_sums.items():
                totals[name] = totals.get(name, 0.0) + value
            images += part_count
        return {name: value / max(images, 1) for name, value in totals.items()}


def check_finite(means: dict[str, float], epoch: float) -> None:
    """Raise TrainingError when the training loss is NaN or infinite: it diverged."""
    loss = means.get("loss", 0.0)
    if not math.isfinite(loss):
        kind = "NaN" if math.isnan(loss) else "infinite"
        raise TrainingError(f"the loss diverged ({kind}) at epoch {epoch}; try a lower learning rate")


class TrainMetrics:
    """Emits the training scalars averaged over the steps since the last report (and over the ranks), with the
    learning rate, and writes them to TensorBoard (``writer``, None on ranks other than 0): every
    ``report_every`` steps, every ``REPORT_SECONDS`` (``end.report``, which the ranks agree on), at the end and
    at the scheduled epochs of ``also_at`` (validations, snapshots), so each of those has a training point. A
    loss that is no longer finite stops training there, before any snapshot of the diverged weights."""

    def __init__(self, writer: SummaryWriter | None, report_every: int, also_at: Sequence[Interval], ranks: Ranks):
        self.writer, self.report_every, self.also_at, self.ranks = writer, report_every, also_at, ranks
        self.sums: dict[str, torch.Tensor] = {}
        self.count, self.last_report = 0, time.monotonic()

    def due(self, step: int) -> bool:
        """Whether the step after ``step`` done steps is one of the regular reports."""
        return (step + 1) % self.report_every == 0 or time.monotonic() - self.last_report >= REPORT_SECONDS

    def on_step_end(self, end: StepEnd) -> None:
        """Add the step's scalars; report their means when a report is due."""
        for value in end.values:
            for name, number in value.items():
                self.sums[name] = self.sums[name] + number if name in self.sums else number.clone()
            self.count += 1
        if not (end.report or end.at_end or any(interval.due(end.epoch) for interval in self.also_at)):
            return
        names = list(self.sums)
        # One transfer for every scalar: a GPU waits here, not at every step.
        numbers = self.ranks.sum(torch.stack([self.sums[name] for name in names])).cpu().tolist()
        count = self.count * self.ranks.world
        means = {name: number / count for name, number in zip(names, numbers, strict=True)}
        check_finite(means, end.epoch)
        emit("metrics", epoch=end.epoch, train=means, lr=end.learning_rate)
        if self.writer is not None:
            for name, value in means.items():
                self.writer.add_scalar(f"train/{name}", value, end.step)
            self.writer.add_scalar("learning_rate", end.learning_rate, end.step)
            self.writer.flush()
        self.sums, self.count, self.last_report = {}, 0, time.monotonic()


class Validation:
    """Validates at every ``interval`` and at the end: emits and writes the validation metrics, and with early
    stopping reports each new best and stops training when the metric has not improved for ``patience``."""

    def __init__(self, trainer: Trainer, make_batches, writer, interval: Interval, early: EarlyStopping | None):
        self.trainer, self.make_batches, self.writer, self.interval = trainer, make_batches, writer, interval
        self.early = early if early is not None and early.stage == "val" else None
        self.seconds = 0.0

    def on_step_end(self, end: StepEnd) -> None:
        """Validate when due; raises Interrupted when SIGTERM arrives during validation."""
        if not (end.at_end or self.interval.due(end.epoch)):
            return
        started = time.monotonic()
        # Labelled with the scheduled epoch just crossed, as snapshots are: the best validation's
        # epoch is then the epoch of a snapshot.
        label = self.interval.take(end.epoch)
        values = self.trainer.validate(self.make_batches())
        if self.trainer.ranks.agree(Stop.requested)[0]:
            raise Interrupted(end.epoch)
        emit("metrics", epoch=label, val=values)
        if self.writer is not None:
            for name, value in values.items():
                self.writer.add_scalar(f"val/{name}", value, end.step)
            self.writer.flush()
        self.seconds += time.monotonic() - started
        if self.early is None:
            return
        if self.early.after_validation(label, values):
            end.stop = True


class Snapshots:
    """Saves a snapshot (model, optimizer state, loss scale, step) at every ``interval``, at the end and where
    early stopping stops, and emits its ``snapshot`` event; ranks other than 0 (not ``main``) only keep count."""

    def __init__(self, trainer: Trainer, folder: str, interval: Interval, facts: dict):
        self.trainer, self.folder, self.interval, self.facts = trainer, folder, interval, facts
        self.seconds = 0.0

    def on_step_end(self, end: StepEnd) -> None:
        """Save a snapshot when due."""
        if not (end.at_end or end.stop or self.interval.due(end.epoch)):
            return
        started = time.monotonic()
        # Named after the scheduled epoch the step has just crossed (by less than one step), so
        # "the snapshot of epoch 1" is snapshot_1.0 whatever the batch size.
        label = self.interval.take(end.epoch)
        if not self.trainer.ranks.main:
            return
        path = os.path.join(self.folder, snapshot_name(label, ".pt"))
        saved = {
            "framework": "torch",
            "model": self.trainer.model.state_dict(),
            "optimizer": self.trainer.optimizer.state_dict(),
            "step": end.step,
            "epoch": end.epoch,
            "facts": self.facts,
        }
        if (scaler := self.trainer.precision.state_dict()) is not None:
            saved["scaler"] = scaler
        # Written aside and renamed: a run killed while saving never leaves a torn snapshot to resume from.
        torch.save(saved, path + ".tmp")
        os.replace(path + ".tmp", path)
        emit("snapshot", epoch=label, path=display_path(path))
        self.seconds += time.monotonic() - started


# --- The program --------------------------------------------------------------------------------------------


def train(args: argparse.Namespace, ranks: Ranks) -> int:
    """Check the arguments, build the model, start from scratch, a snapshot or weights, and run the steps with
    their callbacks, emitting the protocol events; returns the exit status. SIGTERM raises Interrupted.

    ``ranks`` says which of the training processes this is; each trains on its part of every batch."""
    plan = plan_training(args)
    device = training_device(ranks)
    precision = precision_for(args.precision, device)
    ranks.join(device)
    try:
        return train_on(args, plan, device, precision, ranks)
    finally:
        ranks.close()


def train_on(args: argparse.Namespace, plan: Plan, device: torch.device, precision: Precision, ranks: Ranks) -> int:
    """Training as :func:`train` describes it, once this rank has joined the others on ``device``."""
    schedule = plan.schedule
    # Each rank draws random numbers of its own (dropout, augmentation); rank 0 those of a single process.
    rank_seed = None if args.seed is None else args.seed + ranks.rank
    seed_everything(rank_seed, device)
    facts = {"input_shape": plan.input_shape, "nclasses": plan.nclasses, "is_inference": False}
    model = build_model(plan.network, args.network, **facts).to(device)
    model.train()
    trainable, frozen = split_frozen(model, args.freeze)
    optimizer = make_optimizer(args, trainable)
    if args.solver in ("ADAGRADDA", "FTRL"):
        log(f"{args.solver}: TensorFlow's update rule, written for PyTorch (see docs/pytorch.md)")
    os.makedirs(args.save, exist_ok=True)
    first_step = step = start_from(args, model, optimizer, precision, frozen)
    epoch = schedule.epoch_of(step)
    trains = model
    if ranks.distributed:
        # Built with rank 0's weights, broadcast to the others: every rank starts from the same ones.
        gpu = [device.index] if device.type == "cuda" else None
        trains = nn.parallel.DistributedDataParallel(model, device_ids=gpu)

    train_records = Records(plan.train)
    val_records = Records(plan.val) if plan.val else None
    started = time.monotonic()
    for records in filter(None, (train_records, val_records)):
        records.preload()
    if train_records.in_memory:
        log(f"decoded the databases into memory in {time.monotonic() - started:.1f} s")
    part = (ranks.rank, ranks.world)
    prepare = Prepare(device, plan.mean, args.crop_size, plan.augmentation, plan.train.label.kind, rank_seed)
    batches = Batches(train_records, args.batch_size, training=True, shuffle=args.shuffle,
                      seed=ranks.same_seed(args.seed), skip=step * schedule.images_per_step, part=part)  # fmt: skip
    objective = Objective(model, args.network, plan.classification, trains)
    trainer = Trainer(objective, optimizer, prepare, iter(batches), args.batch_accumulation, precision, ranks)
    writer = SummaryWriter(args.tb_dir) if ranks.main else None
    snapshots = Snapshots(trainer, args.save, Interval(args.snapshot_interval, epoch), facts)
    scheduled: list = [snapshots]
    if val_records is not None:
        val_batch = math.ceil(args.batch_size / ranks.world)
        validation = Validation(
            trainer, lambda: Batches(val_records, val_batch, training=False, part=part), writer,
            Interval(args.val_interval, epoch), plan.early,
        )  # fmt: skip
        scheduled.insert(0, validation)
    elif plan.early is not None:
        log(f"early stopping on {plan.early.metric} needs a validation set: training runs every epoch")
    metrics = TrainMetrics(writer, schedule.report_every, [c.interval for c in scheduled], ranks)
    callbacks: list[Callback] = [metrics, *scheduled]

    progress = ProgressReporter(schedule.total_steps, interval=1.0)
    log(f"training {schedule.total_steps - step} steps of {schedule.images_per_step} images "
        f"({plan.train.entries} per epoch)")  # fmt: skip
    if precision.dtype is not None:
        log(f"mixed precision: the forward pass and the loss in {precision.name}, weights and gradients in fp32")
    started, stopped_early = time.monotonic(), False
    try:
        while step < schedule.total_steps and not stopped_early:
            stop, report = ranks.agree(Stop.requested, metrics.due(step))
            if stop:
                raise Interrupted(epoch)
            learning_rate = schedule.learning_rate(step)
            values = trainer.step(learning_rate)
            step += 1
            epoch = schedule.epoch_of(step)
            progress.update(step, epoch=epoch)
            end = StepEnd(step, epoch, step >= schedule.total_steps, learning_rate, values, report)
            for callback in callbacks:
                callback.on_step_end(end)
            stopped_early = end.stop
    finally:
        if writer is not None:
            writer.close()
        train_records.close()
        if val_records is not None:
            val_records.close()
    # Validation and snapshots are not training: the rate is of the steps alone.
    seconds = time.monotonic() - started - sum(getattr(c, "seconds", 0.0) for c in scheduled)
    rate = (step - first_step) * schedule.images_per_step / seconds if seconds > 0 else 0.0
    log(f"trained at {rate:,.0f} images/s")
    emit("result", epochs_done=epoch, images_per_second=round(rate, 1), stopped_early=stopped_early)
    return 0


def run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """Train in this process, or, when several processes are to train and this is not one of them, start them
    and wait for them (:func:`digits.tools.torch.distributed.launch`); returns the exit status."""
    if not is_rank():
        processes = processes_of(args)
        if processes > 1:
            backend = "nccl" if torch.cuda.is_available() else "gloo"
            log(f"starting {processes} training processes (DistributedDataParallel over {backend}), each with "
                f"1/{processes} of every batch of {args.batch_size}")  # fmt: skip
            return launch(argv, processes)
    return train(args, Ranks.from_environment())


def main(argv: Sequence[str]) -> int:
    """Train as the arguments say; returns the exit status (see :func:`run_training`)."""
    args = build_parser().parse_args(argv)

    def out_of_memory(exc: BaseException) -> Exception:
        return TrainingError(
            f"out of GPU memory with batches of {args.batch_size}: lower the batch size (or the crop size)"
        )

    return run_training(lambda: run(args, argv), torch.OutOfMemoryError, out_of_memory)


if __name__ == "__main__":
    run_tool(main)
