"""The model kind type and the one path that creates model jobs (one per point of a sweep) from form data."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from werkzeug.datastructures import MultiDict
from wtforms import Form

from digits.datasets.generic import dataset_info
from digits.form_fields import add_error, replayable_data
from digits.inference.spec import find_snapshot, pretrained_spec, snapshots_of
from digits.jobs import Job, JobStore, Status, Task, new_job_id
from digits.jobs.creation import FormInvalid, JobKind, as_multidict
from digits.models.frameworks import Framework, available_frameworks, framework_of, snapshot_framework
from digits.pretrained.jobs import pretrained_models
from digits.scheduler import ResourcePools

# What makes the app pass a training option that not every framework's tool has, for the error's message.
OPTION_CAUSES = {"--detection": "an object detection dataset"}
# Jobs one form may make (learning rates x batch sizes): the server's DIGITS_MAX_SWEEP.
MAX_SWEEP = 64


class ModelKind(JobKind):
    """A kind of model: its form, the datasets it trains on, its standard networks, its training task.

    ``dataset_kinds`` are the dataset kinds it trains on; ``standard_networks`` are ``(id, title,
    description)`` of the networks its form offers, each in the frameworks that have its source. The
    form's ``framework`` picks the training tool (:mod:`digits.models.frameworks`).
    """

    template = "models/new.html"
    dataset_kinds: tuple[str, ...]
    standard_networks: list[tuple[str, str, str]]

    def forms(
        self, data: MultiDict | None = None, *, store: JobStore, roots: Sequence[Path] = (), **context: Any
    ) -> list[Form]:
        """The model form filled with ``data``; its choices (datasets, models to start from) come from ``store``,
        the server paths it names (a checkpoint to start from) must lie in the data ``roots``."""
        form = self.form(formdata=data)
        form.roots = roots
        form.framework.choices = [(f.id, f.title) for f in available_frameworks()]
        form.set_datasets(self.usable_datasets(store))
        form.previous_networks.choices = [(j.id, j.name) for j in previous_models(store)]
        form.pretrained_networks.choices = [(j.id, j.name) for j in pretrained_models(store)]
        return [form]

    def usable_datasets(self, store: JobStore) -> list[Job]:
        """The datasets a model of this kind may train on (not failed or aborted ones)."""
        return store.all(
            lambda j: (
                j.type == "dataset" and j.kind in self.dataset_kinds and j.status not in (Status.ERROR, Status.ABORTED)
            )
        )

    def prepare(self, directory: Path, dataset: Job) -> list[str]:
        """Write what a new model needs from its dataset into ``directory``; returns extra training arguments."""
        return []

    def networks_of(self, framework: Framework) -> list[tuple[str, str, str]]:
        """The standard networks the form offers in ``framework``."""
        return [network for network in self.standard_networks if framework.has_network(network[0])]


def previous_models(store: JobStore) -> list[Job]:
    """Models with a snapshot to start from."""
    return store.all(lambda j: j.type == "model" and bool(snapshots_of(j)))


def create(
    store: JobStore, kind: ModelKind, data: MultiDict | dict, owner: str, pools: ResourcePools, *,
    roots: Sequence[Path], max_sweep: int = MAX_SWEEP,
) -> list[Job]:  # fmt: skip
    """Validate ``data`` for ``kind`` and add one model job per (learning rate, batch size) of the sweep.

    ``pools`` are the scheduler's resources: GPUs asked for must exist; server paths the data names must
    lie in the data ``roots``; a sweep makes at most ``max_sweep`` jobs. Returns the jobs, not yet
    submitted to a scheduler. Raises :class:`~digits.jobs.creation.FormInvalid`; then nothing is created.
    """
    from digits.models import image_classification as classification

    data = as_multidict(data)
    forms = kind.validated(kind.forms(data, store=store, roots=roots))
    form = forms[0]
    if not _check_choices(form, store, pools) or not classification.check_sweep_size(form, max_sweep):
        raise FormInvalid(form)
    dataset = store.get(form.dataset.data)
    framework = framework_of(form.framework.data)
    source = classification.network_source(form, store)
    weights = classification.starting_weights(form, store)
    points = classification.sweep(form)
    jobs = []
    for learning_rate, batch_size in points:
        record = replayable_data(data)
        record.update(learning_rate=str(learning_rate), batch_size=str(batch_size))
        name = form.model_name.data.strip()
        if len(points) > 1:
            name += f" (lr={learning_rate:g}, batch={batch_size})"
        job_id = new_job_id()
        with store.staging(job_id) as staging:
            (staging / "network.py").write_text(source)
            args = classification.train_args(record, dataset, learning_rate, batch_size, weights)
            args += kind.prepare(staging, dataset)
            if not jobs:  # the points of a sweep differ in values, not in options
                _check_tool_options(form, framework, args)
            task = Task(id="train", name="Train", tool=framework.tool, args=args, resources=resources_of(form, pools))
            job = Job(
                id=job_id, type="model", kind=kind.id, name=name, username=owner,
                group=(form.group_name.data or "").strip(), directory=str(staging), form=record,
                tasks=[task], depends_on_jobs=[dataset.id],
            )  # fmt: skip
            jobs.append(store.add(job, staging))
    return jobs


def _check_choices(form, store: JobStore, pools: ResourcePools) -> bool:
    """Checks that need the store or the machine: the models to start from, the batch size, the GPUs."""
    method = form.method.data
    if method == "pretrained" and form.pretrained_networks.data not in {j.id for j in pretrained_models(store)}:
        add_error(form.pretrained_networks, "Pick a pretrained model (pretrained_networks: its id).")
        return False
    if method == "previous" and form.previous_networks.data not in {j.id for j in previous_models(store)}:
        add_error(form.previous_networks, "Pick a previous model that has a snapshot.")
        return False
    if method == "previous" and (form.previous_network_snapshot.data or "").strip():
        previous = store.get(form.previous_networks.data)
        if find_snapshot(previous, form.previous_network_snapshot.data) is None:
            epochs = ", ".join(f"{s['epoch']:g}" for s in snapshots_of(previous))
            wanted = form.previous_network_snapshot.data
            add_error(
                form.previous_network_snapshot, f"{previous.name} has no snapshot at epoch {wanted}; it has {epochs}."
            )
            return False
    if not _check_start_framework(form, store):
        return False
    dataset = store.get(form.dataset.data)
    train_entries = dataset_info(dataset).entries.get("train")
    too_big = [b for b in form.batch_size.values if train_entries is not None and b > train_entries]
    if too_big:
        add_error(
            form.batch_size,
            f"Batch size {too_big[0]} is larger than the {train_entries} training images of {dataset.name}.",
        )
        return False
    missing = pools.missing({"gpus": form.select_gpus.data}) if form.select_gpus.data else None
    if missing:
        add_error(form.select_gpus, missing + ".")
        return False
    # The pools word it: this machine's GPUs, or on a cluster its largest node's.
    missing = pools.missing({"gpus": form.select_gpu_count.data}) if form.select_gpu_count.data else None
    if missing:
        add_error(form.select_gpu_count, missing + ".")
        return False
    if form.precision.data == "fp16" and "gpus" not in resources_of(form, pools):
        add_error(
            form.precision,
            "fp16 mixed precision needs a GPU, and this job gets none: choose bf16 (which runs on the CPU) or fp32, "
            "or ask for a GPU.",
        )
        return False
    return True


def _check_start_framework(form, store: JobStore) -> bool:
    """Whether the weights the model starts from (a previous model's, a pretrained model's, a snapshot typed in)
    were trained with the form's framework; when not, a form error on that field says what to change."""
    method = form.method.data
    if method == "previous":
        previous = store.get(form.previous_networks.data)
        field, theirs, what = form.previous_networks, previous.form.get("framework"), f"Model {previous.name}"
    elif method == "pretrained":
        pretrained = store.get(form.pretrained_networks.data)
        field, theirs = form.pretrained_networks, pretrained_spec(pretrained).framework
        what = f"Pretrained model {pretrained.name}"
    elif method == "custom" and (form.custom_network_snapshot.data or "").strip():
        path = form.custom_network_snapshot.data.strip()
        field, theirs, what = form.custom_network_snapshot, snapshot_framework(path), f"Snapshot {path}"
        if theirs is None:
            return True  # a name that tells nothing: the tool reads the file and says what it is
    else:
        return True
    ours, theirs = framework_of(form.framework.data), framework_of(theirs)
    if theirs is ours:
        return True
    add_error(
        field,
        f"{what} was trained with {theirs.title}: a {ours.title} model cannot start from its weights. "
        f"Choose framework {theirs.id}, or start from a {ours.title} model.",
    )
    return False


def _check_tool_options(form, framework: Framework, args: list[str]) -> None:
    """Raise FormInvalid, naming the options, when the framework's training tool lacks options of ``args``."""
    missing = [a for a in args if a.startswith("--") and a not in framework.tool_options()]
    if not missing:
        return
    causes = [OPTION_CAUSES[o] for o in missing if o in OPTION_CAUSES]
    causes = f" (for {', '.join(causes)})" if causes else ""
    others = [f.id for f in available_frameworks() if f is not framework and not set(missing) - f.tool_options()]
    advice = f" Choose framework {' or '.join(others)}." if others else ""
    add_error(
        form.framework,
        f"The {framework.title} training tool ({framework.tool}) has no {', '.join(missing)}{causes}, which this "
        f"model needs.{advice}",
    )
    raise FormInvalid(form)


def resources_of(form, pools: ResourcePools) -> dict:
    """What a training task asks the scheduler for: the GPUs picked, a count of GPUs, or a CPU slot."""
    if form.select_gpus.data:
        return {"gpus": sorted(form.select_gpus.data)}
    count = form.select_gpu_count.data
    if count is None:
        count = 1 if pools.gpus else 0
    return {"gpus": count} if count else {"cpu": 1}
