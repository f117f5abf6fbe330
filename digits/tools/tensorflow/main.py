"""Train a TensorFlow network from a dataset's LMDB databases, speaking the JSON-lines protocol.

    python -m digits.tools.tensorflow.main --network network.py --train-db DIR [--val-db DIR]
        [--labels labels.txt] [--mean mean.npy --subtract-mean none|image|pixel] [--crop-size N]
        [--epochs F] [--batch-size N] [--batch-accumulation N] [--solver SGD|MOMENTUM|NESTEROV|ADAGRAD|
        ADAGRADDA|ADADELTA|ADAM|RMSPROP|FTRL] [--rms-decay F] [--learning-rate F]
        [--lr-policy fixed|step|multistep|exp|inv|poly|sigmoid] [--lr-step-size PCT] [--lr-gamma F]
        [--lr-power F] [--lr-multistep-values PCT,PCT] [--snapshot-interval F] [--val-interval F] [--seed N]
        [--shuffle|--no-shuffle] [--save DIR] [--tb-dir DIR] [--weights CHECKPOINT] [--resume]
        [--freeze REGEX,REGEX] [--early-stopping-metric val/loss --patience N]

Events on stdout (besides ``progress``, ``{"done": step, "total": steps, "epoch": e}``):

- ``{"event": "metrics", "epoch": 1.25, "train": {"loss": .., "accuracy": ..}, "lr": ..}`` a few times an epoch,
  averaged over the steps since the last one; every scalar summary of the network is a key;
- ``{"event": "metrics", "epoch": 2.0, "val": {...}}`` after each validation;
- ``{"event": "snapshot", "epoch": 2.0, "path": "snapshot_2.0.ckpt"}`` (a checkpoint prefix, relative to the
  working directory when under it);
- ``{"event": "result", ...}``: ``weights`` (restored/new/mismatched variables), ``frozen``, ``best_epoch``,
  and at the end ``epochs_done``, ``images_per_second``, ``stopped_early``;
- ``{"event": "error", "message": ...}``: the user's file and line for errors in the network source;
- ``{"event": "status", "message": "Building the network"}``: what it does before the first step.

The graph runs in ``tf.compat.v1`` graph mode: one training tower per device (one on the CPU) sharing the
variables of scope ``model``, and one validation tower reusing them. SIGTERM stops after the current step
(exit status 143); ``--resume`` continues from the latest checkpoint of ``--save``, optimizer state and epoch
included.

Read :func:`train` first: it is the whole run. :func:`plan_training` checks the arguments against the network
and the databases, :func:`graph_on_devices` builds the graph, :func:`start_session` restores, then each step
runs the function of :func:`make_step` and the callbacks :class:`TrainMetrics`, :class:`Validation` (with
:class:`EarlyStopping`) and :class:`Snapshots`, which find their epochs with one :class:`Interval` each.
"""

from __future__ import annotations

import argparse
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402 - after TF_CPP_MIN_LOG_LEVEL, which TensorFlow reads on import
import tensorflow as tf_root  # noqa: E402

from digits.tools.lmdb_info import LmdbInfo, db_info  # noqa: E402
from digits.tools.protocol import ProgressReporter, emit, run_tool  # noqa: E402
from digits.tools.tensorflow import detection  # noqa: E402
from digits.tools.tensorflow.data import (  # noqa: E402
    Augmentation,
    decode_all,
    decoded_size,
    make_dataset,
)
from digits.tools.tensorflow.model import GraphKeys, Tower, load_network  # noqa: E402
from digits.tools.training import (  # noqa: E402
    REPORT_SECONDS,
    Callback,
    EarlyStopping,
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
from digits.tools.user_errors import NetworkError, building, network_error  # noqa: E402

tf = tf_root.compat.v1
MODEL_SCOPE = "model"
# Decoded training sets up to this size stay in RAM (--cache-mb): decoding is then done once, not every epoch.
DEFAULT_CACHE_MB = 1024.0


def metrics_text(values: dict[str, float]) -> str:
    """``{"loss": 0.41, "accuracy": 0.875}`` as the job log reads it: ``loss 0.4100, accuracy 87.50%``."""
    return ", ".join(f"{k} {v:.2%}" if "accuracy" in k else f"{k} {v:.4f}" for k, v in values.items())


# --- The command line --------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The parser of the training program's command line (augmentation flags: :func:`add_augmentation_arguments`)."""
    parser = argparse.ArgumentParser(prog="python -m digits.tools.tensorflow.main", description=__doc__.splitlines()[0])
    add_training_arguments(
        parser,
        Words(
            network="class UserModel(Tower)",
            snapshots="checkpoints",
            snapshot="checkpoint",
            weights="checkpoint (prefix or folder) to restore variables from, by name",
            tensors="variables",
        ),
    )
    parser.add_argument(
        "--detection", action="store_true", help="labels are box rows: validation adds precision, recall and mAP"
    )
    parser.add_argument(
        "--cpu-towers", type=int, default=1,
        help="without GPUs, split the CPU into N devices with one tower each (checks multi-tower networks)",
    )  # fmt: skip
    parser.add_argument(
        "--cache-mb", type=float, default=DEFAULT_CACHE_MB,
        help="decode the training images once into RAM when they take at most this many MB (0: decode every epoch)",
    )  # fmt: skip
    parser.add_argument(
        "--threads", type=int, default=0,
        help="CPU threads of the step's ops and of the input pipeline (0: TensorFlow's choice, every core)",
    )  # fmt: skip
    return parser


# --- What the arguments and the databases decide, before any graph ------------------------------------------


@dataclass(frozen=True)
class Plan:
    """The run the arguments ask for, checked against the network and the databases."""

    network: type
    train: LmdbInfo
    val: LmdbInfo | None
    schedule: Schedule
    mean: np.ndarray | None
    early: EarlyStopping | None


def plan_training(args: argparse.Namespace) -> Plan:
    """Load the network and the databases' facts and check the arguments against them; returns the plan.

    Raises TrainingError (or NetworkError, for the network's source) saying what to change.
    """
    if args.batch_size < 1 or args.batch_accumulation < 1:
        raise TrainingError("the batch size and batch accumulation must be at least 1")
    network = load_network(args.network)
    # The graph decodes every record at its size: one too large to decode is refused before training starts.
    train_info = db_info(args.train_db, check_size=True)
    val_info = db_info(args.val_db, check_size=True) if args.val_db else None
    check_arguments(args, train_info, val_info, augmentation_of(args, train_info.shape, Augmentation))
    schedule = schedule_of(args, train_info)
    mean = load_mean(args, train_info.shape)
    early = early_stopping_of(args)
    return Plan(network, train_info, val_info, schedule, mean, early)


# --- The graph ----------------------------------------------------------------------------------------------


@dataclass
class Update:
    """One optimizer's work per step: accumulate gradients (with batch accumulation), then apply them."""

    accumulate: object | None
    apply: object


class LearningRate:
    """The optimizers' learning rate as a variable of the graph, set only when the schedule changes it.

    Feeding it every step instead costs about 60-140 us of Python per session call (measured), a few percent
    of a small network's step; with the fixed and step policies the value changes a handful of times a run.
    A local variable: it is not in checkpoints, since the schedule gives it again from the step on resume.
    """

    def __init__(self) -> None:
        self.variable = tf.Variable(
            0.0, trainable=False, name="learning_rate", collections=[tf.GraphKeys.LOCAL_VARIABLES]
        )
        self._value = tf.placeholder(tf.float32, [], name="new_learning_rate")
        self._assign = self.variable.assign(self._value)
        self._current: float | None = None

    def set(self, sess, value: float) -> None:
        """Make ``value`` the rate of the next steps (a session call only when it differs from the last)."""
        if value != self._current:
            sess.run(self._assign, {self._value: value})
            self._current = value


@dataclass
class TrainGraph:
    """The tensors and ops the training loop runs."""

    learning_rate: LearningRate
    global_step: object
    updates: list[Update]
    update_ops: list
    train_scalars: dict[str, object]
    train_summaries: object | None
    val_scalars: dict[str, object] = field(default_factory=dict)
    val_batch: object | None = None
    val_detections: tuple | None = None  # a detection network's (boxes, box rows) of the validation batch
    class_names: list[str] = field(default_factory=list)  # of --labels: detection scores each class
    iterators: list = field(default_factory=list)
    val_iterator: object | None = None
    model_vars: list = field(default_factory=list)
    frozen: list[str] = field(default_factory=list)


def training_devices(cpu_towers: int = 1) -> tuple[list[str], object]:
    """One tower per visible GPU (the scheduler sets ``CUDA_VISIBLE_DEVICES``), else ``cpu_towers`` on the CPU."""
    gpus = tf_root.config.list_physical_devices("GPU")
    config = tf.ConfigProto(allow_soft_placement=True, gpu_options=tf.GPUOptions(allow_growth=True))
    if gpus:
        return [f"/gpu:{i}" for i in range(len(gpus))], config
    towers = max(1, cpu_towers)
    config.device_count["CPU"] = towers
    return [f"/cpu:{i}" for i in range(towers)], config


def graph_on_devices(args: argparse.Namespace, plan: Plan) -> tuple[TrainGraph, object]:
    """Turn TensorFlow to graph mode (seeded with ``--seed``) and build the graph over the training devices;
    returns the graph and the session config for those devices."""
    tf.disable_eager_execution()
    if args.seed is not None:
        # A seed promises a repeatable run: same initial weights, same order, same arithmetic.
        tf.set_random_seed(args.seed)
        tf_root.config.experimental.enable_op_determinism()
    devices, session_config = training_devices(args.cpu_towers)
    if args.threads > 0:
        session_config.intra_op_parallelism_threads = session_config.inter_op_parallelism_threads = args.threads
    log(f"training on {', '.join(devices)}")
    if args.batch_size % len(devices):
        raise TrainingError(f"the batch size ({args.batch_size}) must split evenly over the {len(devices)} devices")
    nclasses = count_classes(args) or None
    return build_graph(args, plan.network, plan.train, plan.val, nclasses, plan.mean, devices), session_config


def build_graph(
    args: argparse.Namespace,
    model_class: type,
    train: LmdbInfo,
    val: LmdbInfo | None,
    nclasses: int | None,
    mean: np.ndarray | None,
    devices: Sequence[str] = ("/cpu:0",),
) -> TrainGraph:
    """Build the input pipelines, the training towers (one per device), the optimizers and the validation tower."""
    input_shape = [args.crop_size, args.crop_size, train.shape[2]] if args.crop_size else list(train.shape)
    global_step = tf.train.get_or_create_global_step()
    learning_rate = LearningRate()
    augmentation = augmentation_of(args, train.shape, Augmentation)
    train_data = make_dataset(
        train, args.batch_size, training=True, shuffle=args.shuffle, seed=args.seed, mean=mean,
        crop_size=args.crop_size, augmentation=augmentation, cache=training_cache(train, args.cache_mb),
        threads=args.threads,
    )  # fmt: skip
    train_iterator = tf.data.make_initializable_iterator(train_data)
    batch = train_iterator.get_next()
    tower_losses, scalars, others = build_towers(args, model_class, batch, input_shape, nclasses, devices)
    model_vars = [v for v in tf.global_variables() if v is not global_step]
    trainable, frozen = split_frozen(args.freeze)
    graph = TrainGraph(
        learning_rate=learning_rate,
        global_step=global_step,
        updates=build_updates(args, tower_losses, trainable, learning_rate.variable, global_step, devices),
        update_ops=tf.get_collection(tf.GraphKeys.UPDATE_OPS, scope="tower_0"),
        train_scalars={**named_losses(tower_losses[0]), **scalars},
        train_summaries=tf.summary.merge(others) if others else None,
        iterators=[train_iterator],
        model_vars=model_vars,
        frozen=frozen,
    )
    if val is not None:
        val_data = make_dataset(
            val, args.batch_size, training=False, mean=mean, crop_size=args.crop_size, augmentation=augmentation
        )
        graph.val_iterator, graph.val_scalars, graph.val_batch, graph.val_detections = build_validation(
            args, model_class, val_data, input_shape, nclasses
        )
    if args.detection and args.labels:
        with open(args.labels) as f:
            graph.class_names = [line.strip() for line in f if line.strip()]
    return graph


def training_cache(train: LmdbInfo, cache_mb: float) -> tuple | None:
    """The training set decoded into RAM (see ``data.decode_all``) when it takes at most ``cache_mb``, else None."""
    size = decoded_size(train)
    if size > cache_mb * 2**20:
        if cache_mb:
            log(f"decoding every epoch: the decoded training set ({size / 2**20:,.0f} MB) exceeds --cache-mb")
        return None
    started = time.monotonic()
    cache = decode_all(train)
    log(f"decoded the training set into RAM once: {size / 2**20:,.1f} MB in {time.monotonic() - started:.1f} s")
    return cache


def build_validation(
    args: argparse.Namespace, model_class: type, val_data, input_shape: list[int], nclasses: int | None
) -> tuple[object, dict[str, object], object]:
    """The validation tower, reusing the training variables: returns the iterator over ``val_data``, the
    tower's scalars (its losses and the network's scalar summaries), the size of the batch they are of and,
    with ``--detection``, the tower's boxes and the batch's box rows (see ``digits.tools.tensorflow.detection``)."""
    iterator = tf.data.make_initializable_iterator(val_data)
    vx, vy = iterator.get_next()
    with tf.name_scope("val"), tf.variable_scope(MODEL_SCOPE, reuse=True):
        tower = model_class(vx, vy, input_shape, nclasses, is_training=False)
        fine_tune = bool(args.weights) and not args.resume
        losses, scalars, _ = tower_outputs(tower, args.network, fine_tune, GraphKeys.SUMMARIES_VAL)
        detections = (detection.detection_boxes(tower.inference, input_shape, nclasses), vy) if args.detection else None
    return iterator, {**named_losses(losses), **scalars}, tf.shape(vx)[0], detections


def build_towers(
    args: argparse.Namespace, model_class: type, batch: tuple, input_shape: list[int], nclasses: int | None, devices
) -> tuple[list[list[tuple]], dict, list]:
    """One training tower per device, each on its share of ``batch``, sharing the variables of scope ``model``.

    Returns every tower's losses, and the first tower's scalars and other summaries (see :func:`tower_outputs`).
    """
    x, y = batch
    xs, ys = (tf.split(x, len(devices)), tf.split(y, len(devices))) if len(devices) > 1 else ([x], [y])
    fine_tune = bool(args.weights) and not args.resume
    tower_losses, scalars, others = [], {}, []
    for index, device in enumerate(devices):
        with tf.device(device), tf.name_scope(f"tower_{index}"):
            with tf.variable_scope(MODEL_SCOPE, reuse=index > 0):
                tower = model_class(xs[index], ys[index], input_shape, nclasses, is_training=True)
                losses, tower_scalars, tower_others = tower_outputs(tower, args.network, fine_tune)
            tower_losses.append(losses)
            if index == 0:
                scalars, others = tower_scalars, tower_others
                if tower.disableAutoDataParallelism and len(devices) > 1:
                    raise TrainingError("this network disables data parallelism: select one GPU")
    return tower_losses, scalars, others


def tower_outputs(
    tower: Tower, network_path: str, fine_tune: bool = False, collection: str = GraphKeys.SUMMARIES_TRAIN
) -> tuple[list[tuple[object, list | None]], dict, list]:
    """Build a tower's graph: returns ``([(loss, vars or None)], {metric name: scalar}, [other summaries])``.

    The summaries are those of ``self.summaries`` and those the network added to the graph ``collection``
    while this tower was built (``digits.GraphKeys.SUMMARIES_TRAIN`` for a training tower, ``SUMMARIES_VAL``
    for the validation tower). ``inference`` may return a list or tuple of tensors: only ``loss`` reads it here.
    With ``fine_tune`` (training starts from other weights), the network's ``fineTuneHook(net)`` gets the
    inference output and what it returns is ``self.inference`` from then on, for ``loss`` too.
    Errors raised from the user's source become :class:`NetworkError` naming the user's line.
    """
    collected = len(tf.get_collection(collection))
    with building(network_path):
        inference = tower.inference  # building the inference graph first gives errors their proper line
        if fine_tune:
            tower.set_inference(tower.fineTuneHook(inference))
        loss = tower.loss
    added = [s for s in tf.get_collection(collection)[collected:] if not any(s is t for t in tower.summaries)]
    scalars: dict[str, object] = {}
    others = []
    for summary in [*tower.summaries, *added]:
        op = getattr(summary, "op", summary)
        if op.type == "ScalarSummary":
            tag = np.asarray(tf_root.get_static_value(op.inputs[0])).item()
            name = metric_name(tag.decode() if isinstance(tag, bytes) else str(tag))
            scalars[name] = op.inputs[1]
        else:
            others.append(summary)
    return loss_terms(loss), scalars, others


def loss_terms(loss) -> list[tuple[object, list | None]]:
    """What a network's ``loss`` returned as ``[(scalar loss, variables it trains or None for all)]``.

    Raises NetworkError unless it is a scalar tensor or a list of ``{'loss': scalar, 'vars': [...]}``.
    """
    if isinstance(loss, list | tuple):
        losses = []
        for entry in loss:
            if not isinstance(entry, dict) or "loss" not in entry:
                raise NetworkError("loss must return a scalar tensor or a list of {'loss': tensor, 'vars': [...]}")
            losses.append((entry["loss"], list(entry.get("vars") or []) or None))
    else:
        losses = [(loss, None)]
    for value, _ in losses:
        if not isinstance(value, tf_root.Tensor) or value.shape.rank != 0:
            if isinstance(value, tf_root.Tensor) and value.shape.rank is not None:
                got = "a tensor of shape [" + ", ".join(str(d) if d is not None else "batch" for d in value.shape) + "]"
            else:
                got = type(value).__name__
            raise NetworkError(f"loss must be a scalar tensor, got {got}; reduce it, e.g. with tf.reduce_mean")
    return losses


def named_losses(losses: list[tuple]) -> dict[str, object]:
    """A tower's losses by the names metrics show: ``loss``, or ``loss1``, ``loss2``... for several optimizers."""
    if len(losses) == 1:
        return {"loss": losses[0][0]}
    return {f"loss{number}": loss for number, (loss, _) in enumerate(losses, start=1)}


def metric_name(tag: str) -> str:
    """A summary's tag without the scopes training adds (``train/model/accuracy`` -> ``accuracy``)."""
    parts = tag.split("/")
    while len(parts) > 1 and (parts[0] in ("train", "val", MODEL_SCOPE) or re.fullmatch(r"tower_\d+", parts[0])):
        parts = parts[1:]
    return "/".join(parts)


def split_frozen(patterns: str) -> tuple[list, list[str]]:
    """The trainable variables that ``--freeze`` (a comma list of regexes) leaves to train, and the names of
    those it freezes. TrainingError for a pattern that is not a regex."""
    parts = [p.strip() for p in patterns.split(",") if p.strip()]
    try:
        freeze = re.compile("|".join(f"(?:{p})" for p in parts)) if parts else None
    except re.error as exc:
        raise TrainingError(f"--freeze: {exc}") from None
    trainable = [v for v in tf.trainable_variables() if not (freeze and freeze.search(v.op.name))]
    frozen = [v.op.name for v in tf.trainable_variables() if freeze and freeze.search(v.op.name)]
    return trainable, frozen


def build_updates(
    args: argparse.Namespace, tower_losses: list[list[tuple]], trainable: list, learning_rate, global_step, devices
) -> list[Update]:
    """One optimizer per loss of the network, on its gradients averaged over the towers; returns their updates.

    Only the first update advances the global step. TrainingError when a loss has nothing left to train.
    """
    regularization = tf.losses.get_regularization_losses()
    updates = []
    for number in range(len(tower_losses[0])):
        var_list = [v for v in (tower_losses[0][number][1] or trainable) if v in trainable]
        if not var_list:
            raise TrainingError("nothing to train: every variable of the loss is frozen")
        optimizer = make_optimizer(args, learning_rate, global_step)
        tower_grads = []
        for index, device in enumerate(devices):
            loss = tower_losses[index][number][0]
            if len(tower_losses[0]) == 1 and regularization:
                loss = loss + tf.add_n(regularization)  # weight decay counts once per step, not per tower
            with tf.device(device):
                tower_grads.append(optimizer.compute_gradients(loss, var_list=var_list))
        step = global_step if number == 0 else None
        updates.append(make_update(optimizer, average_gradients(tower_grads), step, args.batch_accumulation))
    return updates


def make_optimizer(args: argparse.Namespace, learning_rate, global_step):
    """The ``tf.compat.v1.train`` optimizer for ``--solver``."""
    train = tf.train
    return {
        "SGD": lambda: train.GradientDescentOptimizer(learning_rate),
        "MOMENTUM": lambda: train.MomentumOptimizer(learning_rate, args.momentum),
        "NESTEROV": lambda: train.MomentumOptimizer(learning_rate, args.momentum, use_nesterov=True),
        "ADAGRAD": lambda: train.AdagradOptimizer(learning_rate),
        "ADAGRADDA": lambda: train.AdagradDAOptimizer(learning_rate, global_step),
        "ADADELTA": lambda: train.AdadeltaOptimizer(learning_rate),
        "ADAM": lambda: train.AdamOptimizer(learning_rate),
        "RMSPROP": lambda: train.RMSPropOptimizer(learning_rate, decay=args.rms_decay),
        "FTRL": lambda: train.FtrlOptimizer(learning_rate),
    }[args.solver]()


def average_gradients(tower_grads: list[list[tuple]]) -> list[tuple]:
    """Average each variable's gradient over the towers (one tower: its gradients as they are)."""
    if len(tower_grads) == 1:
        return tower_grads[0]
    averaged = []
    for pairs in zip(*tower_grads, strict=True):
        grads = [g for g, _ in pairs if g is not None]
        averaged.append((tf.add_n(grads) / len(grads) if grads else None, pairs[0][1]))
    return averaged


def make_update(optimizer, grads_and_vars: list[tuple], global_step, accumulation: int) -> Update:
    """Apply ``grads_and_vars`` at once, or with batch accumulation, sum them over batches and apply their mean."""
    grads_and_vars = [(g, v) for g, v in grads_and_vars if g is not None]
    if accumulation <= 1:
        return Update(None, optimizer.apply_gradients(grads_and_vars, global_step=global_step))
    # Local variables: not checkpointed, since every snapshot is taken between whole steps.
    sums = [
        tf.Variable(tf.zeros(v.shape, v.dtype.base_dtype), trainable=False, collections=[tf.GraphKeys.LOCAL_VARIABLES])
        for _, v in grads_and_vars
    ]
    accumulate = tf.group(*[s.assign_add(g) for s, (g, _) in zip(sums, grads_and_vars, strict=True)])
    averaged = [(s / accumulation, v) for s, (_, v) in zip(sums, grads_and_vars, strict=True)]
    apply = optimizer.apply_gradients(averaged, global_step=global_step)
    with tf.control_dependencies([apply]):
        reset = tf.group(*[s.assign(tf.zeros_like(s)) for s in sums])
    return Update(accumulate, reset)


# --- Where training starts from -----------------------------------------------------------------------------


def start_session(sess, args: argparse.Namespace, graph: TrainGraph, saver) -> None:
    """Initialize the variables and input pipelines, then continue from the latest snapshot (``--resume``) or
    take the variables of ``--weights`` by name; logs (and emits) what was restored and what is frozen."""
    sess.run([tf.global_variables_initializer(), tf.local_variables_initializer()])
    sess.run([it.initializer for it in graph.iterators])
    if args.resume:
        checkpoint = tf.train.latest_checkpoint(args.save)
        if not checkpoint:
            raise TrainingError(f"nothing to resume: no snapshot in {os.path.abspath(args.save)}")
        saver.restore(sess, checkpoint)
        log(f"resumed from {checkpoint}")
    elif args.weights:
        report = restore_weights(sess, args.weights, graph.model_vars)
        log(f"restored from {report['checkpoint']}: {', '.join(report['restored']) or 'nothing'}")
        log(f"new (initialized): {', '.join(report['new']) or 'none'}")
        if report["mismatched"]:
            log(f"not restored, shape differs: {', '.join(report['mismatched'])}")
        emit("result", weights=report)
    if graph.frozen:
        log(f"frozen (not trained): {', '.join(graph.frozen)}")
        emit("result", frozen=graph.frozen)
    elif args.freeze:
        log(f"--freeze {args.freeze!r} matches no variable")


def restore_weights(sess, path: str, model_vars: list) -> dict:
    """Restore the model variables that ``path`` holds under the same name and shape; returns what was done."""
    checkpoint = tf.train.latest_checkpoint(path) if os.path.isdir(path) else path
    if not checkpoint:
        raise TrainingError(f"--weights: no checkpoint in {path}")
    try:
        shapes = dict(tf.train.list_variables(checkpoint))
    except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint is the same problem for the user
        raise TrainingError(f"--weights: cannot read checkpoint {checkpoint}: {exc}") from None
    restored, new, mismatched = {}, [], []
    for var in model_vars:
        name = var.op.name
        if name not in shapes:
            new.append(name)
        elif list(shapes[name]) != var.shape.as_list():
            mismatched.append(f"{name} {shapes[name]} -> {var.shape.as_list()}")
        else:
            restored[name] = var
    if restored:
        tf.train.Saver(var_list=restored).restore(sess, checkpoint)
    return {"checkpoint": checkpoint, "restored": sorted(restored), "new": new, "mismatched": mismatched}


# --- One step, and what happens after it --------------------------------------------------------------------


StepFunction = Callable[[float, bool], tuple[list[dict[str, float]], object | None]]


def make_step(sess, graph: TrainGraph, accumulation: int) -> StepFunction:
    """The function that runs one training step: ``step(learning_rate, with_summaries)`` runs ``accumulation``
    batches and applies their gradients. It returns the training scalars of each batch, and the network's
    other summaries of the last batch (None unless asked for and the network has some)."""
    names = list(graph.train_scalars)
    scalars = [graph.train_scalars[name] for name in names]
    update_ops = tf.group(*graph.update_ops)
    apply = tf.group(*[u.apply for u in graph.updates])
    # The batch's own work: with accumulation its gradients are summed, and applying is a call of its own
    # so that the applied mean includes every batch.
    batch_op = apply if accumulation == 1 else tf.group(*[u.accumulate for u in graph.updates])
    # Callables made once: Session.run works out its fetches and feeds anew on every call, which costs about
    # 150 us more per step than a callable (measured), a few percent of a small network's step.
    plain = sess.make_callable([batch_op, update_ops, scalars])
    summarized = None
    if graph.train_summaries is not None:
        summarized = sess.make_callable([batch_op, update_ops, scalars, graph.train_summaries])
    apply_accumulated = sess.make_callable(apply) if accumulation > 1 else None

    def step(learning_rate: float, with_summaries: bool) -> tuple[list[dict[str, float]], object | None]:
        graph.learning_rate.set(sess, learning_rate)
        run = summarized if with_summaries and summarized is not None else plain
        results = [run() for _ in range(accumulation)]
        if apply_accumulated is not None:
            apply_accumulated()
        values = [dict(zip(names, result[2], strict=True)) for result in results]
        return values, results[-1][3] if run is summarized else None

    return step


def check_finite(values: list[dict[str, float]], epoch: float) -> None:
    """Raise TrainingError when a training scalar is NaN or infinite: the loss diverged."""
    for value in values:
        for number in value.values():
            if not np.isfinite(number):
                kind = "NaN" if np.isnan(number) else "infinite"
                raise TrainingError(f"the loss diverged ({kind}) at epoch {epoch}; try a lower learning rate")


class TrainMetrics:
    """Emits the training scalars averaged over the steps since the last report, with the learning rate, and
    writes them to TensorBoard: every ``report_every`` steps, every ``REPORT_SECONDS``, at the end and at the
    scheduled epochs of ``also_at`` (validations, snapshots), so each of those has a training point."""

    def __init__(self, writer, names: Sequence[str], report_every: int, also_at: Sequence[Interval]):
        self.writer = writer
        self.names = list(names)
        self.report_every = report_every
        self.also_at = also_at
        self.sums, self.count, self.last_report = dict.fromkeys(self.names, 0.0), 0, time.monotonic()

    def due(self, step: int) -> bool:
        """Whether the step after ``step`` done steps is one of the regular reports (it then fetches summaries)."""
        return (step + 1) % self.report_every == 0 or time.monotonic() - self.last_report >= REPORT_SECONDS

    def on_step_end(self, end: StepEnd) -> None:
        """Add the step's scalars; report their means when a report is due."""
        for value in end.values:
            for key, number in value.items():
                self.sums[key] += float(number)
            self.count += 1
        if not (end.report or end.at_end or any(interval.due(end.epoch) for interval in self.also_at)):
            return
        means = {k: v / self.count for k, v in self.sums.items()}
        emit("metrics", epoch=end.epoch, train=means, lr=end.learning_rate)
        if end.at_end or any(interval.due(end.epoch) for interval in self.also_at):
            log(f"epoch {round(end.epoch, 2):g} train: {metrics_text(means)}, lr {end.learning_rate:.4g}")
        self.writer.add_summary(scalar_summary(means, "train/"), end.step)
        self.writer.add_summary(scalar_summary({"learning_rate": end.learning_rate}, ""), end.step)
        if end.summaries is not None:
            self.writer.add_summary(end.summaries, end.step)
        # Flushed with each report (a few times an epoch, at least every REPORT_SECONDS), not every step.
        self.writer.flush()
        self.sums, self.count, self.last_report = dict.fromkeys(self.names, 0.0), 0, time.monotonic()


class Validation:
    """Validates at every ``interval`` and at the end: emits and writes the validation metrics, and with early
    stopping reports each new best and stops training when the metric has not improved for ``patience``."""

    def __init__(self, sess, graph: TrainGraph, writer, interval: Interval, early: EarlyStopping | None):
        self.sess, self.graph, self.writer = sess, graph, writer
        self.interval = interval
        self.early = early if early is not None and early.stage == "val" else None

    def on_step_end(self, end: StepEnd) -> None:
        """Validate when due; raises Interrupted when SIGTERM arrives during validation."""
        if not (end.at_end or self.interval.due(end.epoch)):
            return
        # Labelled with the scheduled epoch just crossed, as snapshots are: the best validation's
        # epoch is then the epoch of a snapshot.
        label = self.interval.take(end.epoch)
        values = validate(self.sess, self.graph)
        Stop.check(end.epoch)
        emit("metrics", epoch=label, val=values)
        log(f"epoch {label:g} val: {metrics_text(values)}")
        self.writer.add_summary(scalar_summary(values, "val/"), end.step)
        self.writer.flush()
        if self.early is None:
            return
        if self.early.after_validation(label, values):
            end.stop = True


def validate(sess, graph: TrainGraph) -> dict[str, float]:
    """Run the validation tower over the whole validation set; returns each scalar averaged over images, and
    for a detection network its precision, recall, mAP and AP per class over the whole set."""
    sess.run(graph.val_iterator.initializer)
    sums = dict.fromkeys(graph.val_scalars, 0.0)
    count = 0
    found: list = []
    truths: list = []
    while not Stop.requested:
        try:
            values, n, boxes = sess.run([graph.val_scalars, graph.val_batch, graph.val_detections or []])
        except tf.errors.OutOfRangeError:
            break
        if boxes:
            found += list(boxes[0])
            truths += list(boxes[1])
        for key, value in values.items():
            sums[key] += float(value) * n
        count += n
    values = {k: v / max(count, 1) for k, v in sums.items()}
    if graph.val_detections is not None:
        values.update(detection.evaluate(found, truths, graph.class_names))
    return values


class Snapshots:
    """Saves a checkpoint of the variables (optimizer state included) at every ``interval``, at the end and where
    early stopping stops, and emits its ``snapshot`` event."""

    def __init__(self, sess, saver, folder: str, interval: Interval):
        self.sess, self.saver, self.folder = sess, saver, folder
        self.interval = interval

    def on_step_end(self, end: StepEnd) -> None:
        """Save a snapshot when due."""
        if not (end.at_end or end.stop or self.interval.due(end.epoch)):
            return
        # Named after the scheduled epoch the step has just crossed (by less than one step), so
        # "the snapshot of epoch 1" is snapshot_1.0 whatever the batch size.
        label = self.interval.take(end.epoch)
        prefix = os.path.join(self.folder, snapshot_name(label, ".ckpt"))
        try:
            self.saver.save(self.sess, prefix, write_meta_graph=False)
        except Exception as exc:
            if "No space left" not in str(exc) and getattr(exc, "errno", None) != 28:  # ENOSPC
                raise
            from digits.tools.create_db import DiskFull

            raise DiskFull(f"no space left in {os.path.abspath(self.folder)} for snapshot {label}") from exc
        emit("snapshot", epoch=label, path=display_path(prefix))


def make_callbacks(
    args: argparse.Namespace, plan: Plan, sess, graph: TrainGraph, saver, writer, epoch: float
) -> tuple[TrainMetrics, list[Callback]]:
    """The callbacks of a run that starts at ``epoch``, in the order they run: training metrics, validation (when
    there is a validation set) and snapshots. Returns the metrics callback apart too, as the loop asks it which
    steps fetch the network's summaries."""
    snapshots = Snapshots(sess, saver, args.save, Interval(args.snapshot_interval, epoch))
    scheduled: list = [snapshots]
    if graph.val_iterator is not None:
        scheduled.insert(0, Validation(sess, graph, writer, Interval(args.val_interval, epoch), plan.early))
    metrics = TrainMetrics(writer, graph.train_scalars, plan.schedule.report_every, [c.interval for c in scheduled])
    return metrics, [metrics, *scheduled]


def scalar_summary(values: dict[str, float], prefix: str):
    """A TensorBoard ``Summary`` of ``values``, each tagged ``prefix`` + its name."""
    return tf.Summary(value=[tf.Summary.Value(tag=f"{prefix}{k}", simple_value=v) for k, v in values.items()])


# --- The program --------------------------------------------------------------------------------------------


def train(args: argparse.Namespace) -> int:
    """Check the arguments, build the graph, start from scratch, a snapshot or weights, and run the steps with
    their callbacks, emitting the protocol events; returns the exit status. SIGTERM raises Interrupted."""
    emit("status", message="Reading the dataset")
    plan = plan_training(args)
    schedule = plan.schedule
    emit("status", message="Building the network")
    graph, session_config = graph_on_devices(args, plan)
    saver = tf.train.Saver(max_to_keep=None, save_relative_paths=True)
    os.makedirs(args.save, exist_ok=True)
    with tf.Session(config=session_config) as sess:
        emit("status", message="Preparing the weights")
        start_session(sess, args, graph, saver)
        writer = tf.summary.FileWriter(args.tb_dir, sess.graph)
        first_step = step = int(sess.run(graph.global_step))
        epoch, seconds, stopped_early = schedule.epoch_of(step), 0.0, False
        metrics, callbacks = make_callbacks(args, plan, sess, graph, saver, writer, epoch)
        run_step = make_step(sess, graph, args.batch_accumulation)
        progress = ProgressReporter(schedule.total_steps, interval=1.0)
        steps = schedule.total_steps - step
        log(f"training {steps} steps of {schedule.images_per_step} images ({plan.train.entries} per epoch)")
        while step < schedule.total_steps and not stopped_early:
            Stop.check(epoch)
            started, learning_rate, report = time.monotonic(), schedule.learning_rate(step), metrics.due(step)
            values, summaries = run_step(learning_rate, report)
            seconds += time.monotonic() - started
            step += 1
            epoch = schedule.epoch_of(step)
            check_finite(values, epoch)
            progress.update(step, epoch=epoch)
            end = StepEnd(step, epoch, step >= schedule.total_steps, learning_rate, values, report, summaries)
            for callback in callbacks:
                callback.on_step_end(end)
            stopped_early = end.stop
        writer.close()
    rate = (step - first_step) * schedule.images_per_step / seconds if seconds else 0.0
    log(f"trained at {rate:,.0f} images/s")
    emit("result", epochs_done=epoch, images_per_second=round(rate, 1), stopped_early=stopped_early)
    return 0


def op_error(exc, network_path: str) -> NetworkError:
    """A graph op that failed while running (shapes that do not fit...), as the op's message and the line of
    the user's network that created it, taken from the op's creation stack."""
    lines = exc.message.splitlines()
    node = next((i for i, line in enumerate(lines) if line.startswith("Node: ")), None)
    detail = lines[node + 1] if node is not None and node + 1 < len(lines) else lines[0]
    line = None
    wanted = os.path.abspath(network_path)
    for frame in getattr(failed_op(exc), "traceback", None) or []:
        if os.path.abspath(frame.filename) == wanted:
            line = frame.lineno
    if line is None:
        return NetworkError(f"{type(exc).__name__}: {detail}")
    return network_error(detail, network_path, line)


def failed_op(exc):
    """The op of the graph that raised ``exc``, or None. Errors of a session's callables carry no op, only
    the node's name in their message (``[[{{node tower_0/model/Reshape}}]]``)."""
    if exc.op is not None:
        return exc.op
    named = re.search(r"\{\{node ([^}]+)\}\}", exc.message)
    try:
        return tf.get_default_graph().get_operation_by_name(named.group(1)) if named else None
    except (KeyError, ValueError):
        return None


def main(argv: Sequence[str]) -> int:
    """Train as the arguments say; returns the exit status (see :func:`run_training`)."""
    args = build_parser().parse_args(argv)
    return run_training(lambda: train(args), tf_root.errors.OpError, lambda exc: op_error(exc, args.network))


if __name__ == "__main__":
    run_tool(main)
