"""Image classification models: DIGITS' model form, the training task it runs, and how a model is described.

A model job's directory holds ``network.py`` (the network source it trains), the training task's log,
its snapshots (TensorFlow: ``snapshot_<epoch>.ckpt*``; PyTorch: ``snapshot_<epoch>.pt``) and TensorBoard
summaries under ``tb/``. The ``framework`` field picks the training tool and the standard networks
(:mod:`digits.models.frameworks`).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wtforms import FloatField, Form, IntegerField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import DataRequired, NumberRange, Optional, ValidationError

from digits.data_roots import inside_data_roots
from digits.form_fields import Checkbox, Choice, RadioChoice, add_error, checked
from digits.inference.spec import find_snapshot, pretrained_spec, snapshots_of
from digits.jobs import Job, JobStore, Status
from digits.lr_policy import POLICIES, LRPolicy, parse_percents
from digits.models.frameworks import FRAMEWORKS, TENSORFLOW, check_network_source, framework_of, framework_title
from digits.models.kinds import ModelKind

KIND = "image-classification"
TITLE = "Image Classification Model"
STANDARD_NETWORKS = [
    ("lenet", "LeNet", "LeCun's 1998 network for 28x28 digits; fast on the CPU."),
    ("alexnet", "AlexNet", "Krizhevsky's 2012 ImageNet winner; for 224x224 or larger color images."),
    ("googlenet", "GoogLeNet", "Inception modules (2014); deeper and lighter than AlexNet."),
    ("vgg16", "VGG-16", "Sixteen layers of 3x3 convolutions (2014)."),
    ("resnet", "ResNet", "Residual network (2015); trains deep networks well."),
]
# Standard networks of generic models (digits.models.generic); their sources live beside the others.
SEGMENTATION_NETWORKS = [
    ("fcn", "FCN", "A small fully convolutional network: a class for every pixel (segmentation datasets)."),
    ("detectnet", "DetectNet", "A single-shot grid detector: boxes, classes and confidences (detection datasets)."),
]
SOLVERS = [
    ("SGD", "Stochastic Gradient Descent (SGD)"),
    ("MOMENTUM", "Momentum"),
    ("NESTEROV", "Nesterov's accelerated gradient (NAG)"),
    ("ADAGRAD", "Adaptive gradient (AdaGrad)"),
    ("ADAGRADDA", "AdaGrad dual averaging (AdaGradDA)"),
    ("ADADELTA", "AdaDelta"),
    ("ADAM", "Adam"),
    ("RMSPROP", "RMSprop"),
    ("FTRL", "Follow the regularized leader (FTRL)"),
]
# The PyTorch tool's --precision (automatic mixed precision); fp32 passes no option.
PRECISIONS = [("fp32", "Off (fp32)"), ("bf16", "bf16"), ("fp16", "fp16 (needs a GPU)")]


def standard_network_source(name: str, framework: str = TENSORFLOW.id) -> str:
    """The source of a standard network in ``framework``, as the Customize button copies it into the editor;
    KeyError when there is no such network (or the framework has none of that name)."""
    if name not in {n for n, _, _ in STANDARD_NETWORKS + SEGMENTATION_NETWORKS}:
        raise KeyError(name)
    return framework_of(framework).network_source(name)


def comma_list(kind: type, minimum: float):
    """A validator for ``"0.01, 0.001"`` style fields: every item a ``kind`` above ``minimum``."""

    def check(form, field):
        values = []
        for part in (field.data or "").split(","):
            part = part.strip()
            if not part:
                continue
            try:
                value = kind(part)
            except ValueError:
                raise ValidationError(f"{part!r} is not a number.") from None
            if value <= minimum:
                raise ValidationError(f"{part} must be more than {minimum:g}.")
            values.append(value)
        if not values:
            raise ValidationError("Enter a value (or a comma list for a sweep).")
        field.values = values

    return check


class ImageClassificationModelForm(Form):
    """DIGITS' model form; field names are DIGITS' so scripts keep working.

    ``roots`` are the data roots (set by ``kind.forms(data, roots=...)``): a checkpoint typed in must lie
    in them; a form without roots accepts none.
    """

    roots: Sequence[Path] = ()

    dataset = Choice("Dataset", choices=[])
    train_epochs = IntegerField("Training epochs", default=30, validators=[DataRequired(), NumberRange(1, 100000)])
    snapshot_interval = FloatField("Snapshot interval (epochs)", default=1.0, validators=[Optional(), NumberRange(0)])
    val_interval = FloatField("Validation interval (epochs)", default=1.0, validators=[Optional(), NumberRange(0)])
    traces_interval = FloatField("Tracing interval (epochs)", default=0, validators=[Optional(), NumberRange(0)])
    random_seed = IntegerField("Random seed", validators=[Optional()])
    batch_size = StringField(
        "Batch size", default="16", validators=[comma_list(int, 0)], description="A comma list makes a sweep."
    )
    batch_accumulation = IntegerField("Batch accumulation", default=1, validators=[Optional(), NumberRange(1, 1024)])
    solver_type = Choice("Solver type", choices=SOLVERS, default="SGD")
    rms_decay = FloatField("RMS decay", default=0.99, validators=[Optional(), NumberRange(0, 1)])
    learning_rate = StringField(
        "Base learning rate",
        default="0.01",
        validators=[comma_list(float, 0)],
        description="A comma list makes a sweep.",
    )
    lr_policy = Choice("Policy", choices=[(p, p.title()) for p in POLICIES], default="step")
    lr_step_size = FloatField("Step size (% of training)", default=33, validators=[Optional(), NumberRange(0, 100)])
    lr_step_gamma = FloatField("Gamma", default=0.1, validators=[Optional()])
    lr_multistep_values = StringField("Step values (% of training)", default="50,85")
    lr_multistep_gamma = FloatField("Gamma", default=0.5, validators=[Optional()])
    lr_exp_gamma = FloatField("Gamma", default=0.95, validators=[Optional()])
    lr_inv_gamma = FloatField("Gamma", default=0.1, validators=[Optional()])
    lr_inv_power = FloatField("Power", default=0.5, validators=[Optional()])
    lr_poly_power = FloatField("Power", default=3, validators=[Optional()])
    lr_sigmoid_step = FloatField("Step (% of training)", default=50, validators=[Optional()])
    lr_sigmoid_gamma = FloatField("Gamma", default=0.1, validators=[Optional()])

    shuffle = Checkbox("Shuffle train data", default=True)
    crop_size = IntegerField("Crop size", validators=[Optional(), NumberRange(1)])
    use_mean = Choice(
        "Subtract mean", choices=[("none", "None"), ("image", "Image"), ("pixel", "Pixel")], default="image"
    )
    aug_flip = Choice(
        "Flipping",
        choices=[("none", "None"), ("fliplr", "Horizontal"), ("flipud", "Vertical"), ("fliplrud", "Both")],
        default="none",
    )
    aug_quad_rot = Choice(
        "Quadrilateral rotation",
        choices=[("none", "None"), ("rot90", "0, 90 or 270"), ("rot180", "0 or 180"), ("rotall", "0, 90, 180, 270")],
        default="none",
    )
    aug_rot = IntegerField("Rotation (+- degrees)", default=0, validators=[Optional(), NumberRange(0, 180)])
    aug_scale = FloatField("Rescale (stddev)", default=0, validators=[Optional(), NumberRange(0, 1)])
    aug_noise = FloatField("Noise (stddev)", default=0, validators=[Optional(), NumberRange(0, 1)])
    aug_contrast = FloatField("Contrast (factor)", default=0, validators=[Optional(), NumberRange(0, 5)])
    aug_whitening = Checkbox("Whitening")
    aug_hsv_use = Checkbox("HSV shifting")
    aug_hsv_h = FloatField("Hue", default=0.02, validators=[Optional(), NumberRange(0, 0.5)])
    aug_hsv_s = FloatField("Saturation", default=0.04, validators=[Optional(), NumberRange(0, 0.5)])
    aug_hsv_v = FloatField("Value", default=0.06, validators=[Optional(), NumberRange(0, 0.5)])

    early_stopping_metric = StringField("Early stopping on", description="e.g. val/loss; empty: train to the end.")
    early_stopping_patience = IntegerField("Patience (validations)", default=5, validators=[Optional(), NumberRange(1)])
    freeze_variables = StringField("Freeze variables", description="Comma list of variable-name patterns not trained.")
    precision = Choice("Mixed precision", choices=PRECISIONS, default="fp32")

    method = RadioChoice(
        "Network",
        choices=[
            ("standard", "Standard"),
            ("previous", "Previous"),
            ("pretrained", "Pretrained"),
            ("custom", "Custom"),
        ],
        default="standard",
    )
    # The choices are the frameworks this server has (set by ``kind.forms``).
    framework = Choice("Framework", choices=[(f.id, f.title) for f in FRAMEWORKS.values()], default=TENSORFLOW.id)
    standard_networks = RadioChoice(
        "Standard networks", choices=[(n, t) for n, t, _ in STANDARD_NETWORKS], default="lenet"
    )
    previous_networks = RadioChoice("Previous networks", choices=[], validate_choice=False)
    pretrained_networks = RadioChoice("Pretrained networks", choices=[], validate_choice=False)
    custom_network = TextAreaField("Custom network")
    custom_network_snapshot = StringField(
        "Pretrained model(s)", validators=[inside_data_roots], description="A checkpoint to start from."
    )
    previous_network_snapshot = StringField("Snapshot", description="The epoch to start from; empty: the last.")

    select_gpu = StringField("Select GPU")
    select_gpus = SelectMultipleField("Select GPU(s)", choices=[], validate_choice=False, coerce=int)
    select_gpus_list = StringField("GPU list")
    select_gpu_count = IntegerField("Use this many GPUs", validators=[Optional(), NumberRange(0)])

    model_name = StringField("Model Name", validators=[DataRequired("Name the model.")])
    group_name = StringField("Group Name")

    def set_datasets(self, datasets: list[Job]) -> None:
        self.dataset.choices = [(d.id, d.name) for d in datasets]
        self._datasets = {d.id: d for d in datasets}

    def validate_dataset(self, field) -> None:
        job = self._datasets.get(field.data)
        if job is not None and job.status in (Status.ERROR, Status.ABORTED):
            raise ValidationError(f"Dataset {job.name} ended as {job.status}; pick another or clone it.")

    def chosen_framework(self):
        """The framework the form names, or None when it names one this server lacks."""
        valid = {str(value) for value, *_ in self.framework.choices}
        return FRAMEWORKS.get(self.framework.data) if self.framework.data in valid else None

    def validate_standard_networks(self, field) -> None:
        framework = self.chosen_framework()
        if self.method.data != "standard" or framework is None or framework.has_network(field.data or ""):
            return
        offered = ", ".join(str(value) for value, *_ in field.choices if framework.has_network(str(value)))
        raise ValidationError(f"{framework.title} has no standard network {field.data!r}; it has: {offered}.")

    def validate_custom_network(self, field) -> None:
        framework = self.chosen_framework()
        if self.method.data != "custom" or framework is None:
            return
        problem = check_network_source(field.data or "", framework)
        if problem:
            raise ValidationError(problem)

    def validate_early_stopping_metric(self, field) -> None:
        metric = (field.data or "").strip()
        if not metric:
            return
        stage, _, name = metric.rpartition("/")
        if stage not in ("", "val") or not name:
            raise ValidationError("Early stopping watches a validation metric: val/loss, val/accuracy, ...")
        field.data = f"val/{name}"
        dataset = self._datasets.get(self.dataset.data)
        if dataset is not None and not (Path(dataset.directory) / "val_db").is_dir():
            raise ValidationError(f"Dataset {dataset.name} has no validation set to watch.")

    def validate_lr_multistep_values(self, field) -> None:
        if self.lr_policy.data != "multistep":
            return
        try:
            parse_percents(field.data)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


def lr_policy_of(form_data: dict[str, Any], base_lr: float) -> LRPolicy:
    """The learning-rate policy the form's fields describe (DIGITS' field names, one base rate)."""
    policy = form_data.get("lr_policy") or "step"

    def number(name: str, default: float) -> float:
        value = form_data.get(name)
        return float(value) if value not in (None, "") else default

    # Only the chosen policy's fields are read: the others may hold anything.
    readers = {
        "step": lambda: {"step_size": number("lr_step_size", 33), "gamma": number("lr_step_gamma", 0.1)},
        "multistep": lambda: {
            "multistep_values": parse_percents(str(form_data.get("lr_multistep_values", "50,85"))),
            "gamma": number("lr_multistep_gamma", 0.5),
        },
        "exp": lambda: {"gamma": number("lr_exp_gamma", 0.95)},
        "inv": lambda: {"gamma": number("lr_inv_gamma", 0.1), "power": number("lr_inv_power", 0.5)},
        "poly": lambda: {"power": number("lr_poly_power", 3)},
        "sigmoid": lambda: {"step_size": number("lr_sigmoid_step", 50), "gamma": number("lr_sigmoid_gamma", 0.1)},
    }
    params = readers[policy]() if policy in readers else {}
    return LRPolicy(policy=policy, base_lr=base_lr, **params)


def sweep(form: ImageClassificationModelForm) -> list[tuple[float, int]]:
    """Every (learning rate, batch size) combination the form asks for: one job each."""
    return list(itertools.product(form.learning_rate.values, form.batch_size.values))


def check_sweep_size(form: ImageClassificationModelForm, max_sweep: int) -> bool:
    """Whether the sweep makes at most ``max_sweep`` jobs; when not, a form error on the learning rate says
    how many were asked. Counted before any combination is made."""
    rates, sizes = len(form.learning_rate.values), len(form.batch_size.values)
    if rates * sizes <= max_sweep:
        return True
    add_error(
        form.learning_rate,
        f"{rates} learning rates x {sizes} batch sizes make {rates * sizes} jobs; one form may make at most "
        f"{max_sweep} (DIGITS_MAX_SWEEP). Split the sweep.",
    )
    return False


def network_source(form: ImageClassificationModelForm, store: JobStore) -> str:
    """The source the new model trains: typed in, a standard network's, a previous or pretrained model's."""
    if form.method.data == "custom":
        return form.custom_network.data
    if form.method.data == "standard":
        return standard_network_source(form.standard_networks.data, form.framework.data)
    if form.method.data == "pretrained":
        return Path(pretrained_spec(store.get(form.pretrained_networks.data)).network).read_text()
    previous = store.get(form.previous_networks.data)
    return (Path(previous.directory) / "network.py").read_text()


def starting_weights(form: ImageClassificationModelForm, store: JobStore) -> str | None:
    """The checkpoint a new model starts from: a previous model's snapshot, a pretrained model's, or one typed in."""
    if form.method.data == "pretrained":
        return pretrained_spec(store.get(form.pretrained_networks.data)).checkpoint
    if form.method.data == "previous":
        previous = store.get(form.previous_networks.data)
        snapshots = snapshots_of(previous)
        chosen = find_snapshot(previous, form.previous_network_snapshot.data) or snapshots[-1]
        return str(Path(previous.directory) / chosen["path"])
    return (form.custom_network_snapshot.data or "").strip() or None


def pretrained_summary(job: Job) -> dict[str, Any]:
    """A pretrained model as the model form's Pretrained tab lists it: its input shape and class count."""
    spec = pretrained_spec(job)
    return {
        "id": job.id,
        "name": job.name,
        "image_shape": spec.image_shape,
        "nclasses": len(spec.labels),
        "framework": framework_title(spec.framework),
    }


def train_args(
    form_data: dict[str, Any], dataset: Job, learning_rate: float, batch_size: int, weights: str | None = None
) -> list[str]:
    """The training program's arguments for one job of the form (one point of a sweep)."""
    data_dir = Path(dataset.directory)
    policy = lr_policy_of(form_data, learning_rate)
    args = [
        "--network", "network.py",
        "--train-db", str(data_dir / "train_db"),
        "--epochs", str(form_data.get("train_epochs", 30)),
        "--batch-size", str(batch_size),
        "--batch-accumulation", str(form_data.get("batch_accumulation") or 1),
        "--solver", form_data.get("solver_type", "SGD"),
        "--learning-rate", str(learning_rate),
        "--lr-policy", policy.policy,
        "--lr-step-size", str(policy.step_size),
        "--lr-gamma", str(policy.gamma),
        "--lr-power", str(policy.power),
        "--lr-multistep-values", ",".join(f"{v:g}" for v in policy.multistep_values),
        "--snapshot-interval", str(form_data.get("snapshot_interval") or 1),
        "--val-interval", str(form_data.get("val_interval") or 1),
        "--subtract-mean", form_data.get("use_mean", "image"),
        "--save", ".",
        "--tb-dir", "tb",
    ]  # fmt: skip
    if (data_dir / "labels.txt").is_file():
        args += ["--labels", str(data_dir / "labels.txt")]
    if (data_dir / "val_db").is_dir():
        args += ["--val-db", str(data_dir / "val_db")]
    if (data_dir / "mean.npy").is_file():
        args += ["--mean", str(data_dir / "mean.npy")]
    if form_data.get("random_seed") not in (None, ""):
        args += ["--seed", str(form_data["random_seed"])]
    args.append("--shuffle" if checked(form_data.get("shuffle")) else "--no-shuffle")
    if form_data.get("crop_size"):
        args += ["--crop-size", str(form_data["crop_size"])]
    if form_data.get("solver_type") == "RMSPROP":
        args += ["--rms-decay", str(form_data.get("rms_decay") or 0.99)]
    if form_data.get("freeze_variables"):
        args += ["--freeze", form_data["freeze_variables"]]
    if form_data.get("early_stopping_metric"):
        args += [
            "--early-stopping-metric", form_data["early_stopping_metric"],
            "--patience", str(form_data.get("early_stopping_patience") or 5),
        ]  # fmt: skip
    if weights:
        args += ["--weights", weights]
    if form_data.get("precision") not in (None, "", "fp32"):
        args += ["--precision", form_data["precision"]]
    args += augmentation_args(form_data)
    return args


def augmentation_args(form_data: dict[str, Any]) -> list[str]:
    """The training program's augmentation arguments for the form's ``aug_*`` fields (only those in use)."""
    args = []
    for field, option in (("aug_flip", "--aug-flip"), ("aug_quad_rot", "--aug-quad-rot")):
        if form_data.get(field, "none") not in ("none", ""):
            args += [option, form_data[field]]
    for field, option in (("aug_rot", "--aug-rot"), ("aug_scale", "--aug-scale"), ("aug_noise", "--aug-noise"),
                          ("aug_contrast", "--aug-contrast")):  # fmt: skip
        if form_data.get(field) not in (None, "") and float(form_data[field]):
            args += [option, str(form_data[field])]
    if checked(form_data.get("aug_whitening")):
        args.append("--aug-whitening")
    if checked(form_data.get("aug_hsv_use")):
        args += ["--aug-hsv", *(str(form_data.get(f"aug_hsv_{c}") or 0) for c in "hsv")]
    return args


class ImageClassificationModel(ModelKind):
    """A network trained to name the class of an image, on an image classification dataset."""

    id = KIND
    path = "images/classification"
    title = TITLE
    form = ImageClassificationModelForm
    dataset_kinds = ("image-classification",)
    standard_networks = STANDARD_NETWORKS
