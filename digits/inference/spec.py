"""A model spec: everything a process needs to rebuild a trained model and feed it images as training did.

The spec is plain JSON (no TensorFlow here): the web process writes it for the inference worker and the
batch inference tool, and a downloaded model archive carries it as ``info.json`` with relative paths.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from digits.jobs import Job, JobStore


class SpecError(ValueError):
    """The model cannot be used as asked (no snapshot yet, a deleted dataset...); the message says why."""


@dataclass
class ModelSpec:
    """What inference needs: the network source, a checkpoint, and the preprocessing of training.

    ``image_shape`` is ``[H, W, C]`` of the dataset's images (what an input is resized to);
    ``mean`` is a ``.npy`` HxWxC mean image, subtracted per ``subtract_mean`` (none, image, pixel);
    ``crop_size`` center-crops after the mean, as validation did.
    """

    network: str
    checkpoint: str
    labels: list[str]
    image_shape: list[int]
    resize_mode: str = "squash"
    mean: str | None = None
    subtract_mean: str = "none"
    crop_size: int | None = None
    snapshot_epoch: float | None = None
    # The dtype of the network's input pixels (generic datasets may hold uint16 or float arrays).
    input_dtype: str = "uint8"
    # "classification": outputs are class scores, answered as top-5 percents; "generic": the network's own
    # outputs, answered as they are (regression values, label arrays, images); "detection": boxes (a grid
    # turned into boxes by digits.tools.tensorflow.detection), answered as ``bbox-list``.
    task: str = "classification"
    # Trained from another model's weights: the network's fineTuneHook shaped its output.
    fine_tune: bool = False
    # The framework that trained it ("tensorflow" or "torch"): which worker rebuilds it.
    framework: str = "tensorflow"
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})

    def key(self) -> str:
        """What identifies a loaded model in the worker's cache."""
        return f"{self.network}|{self.checkpoint}"


def snapshots_of(job: Job) -> list[dict]:
    """A model's snapshots, oldest first: ``[{"epoch", "path"}]`` (paths relative to its directory)."""
    return job.tasks[0].data.get("snapshots", []) if job.tasks else []


def find_snapshot(job: Job, epoch: str | None) -> dict | None:
    """The snapshot of ``job`` at ``epoch`` (as typed: "2", "2.0"), or None."""
    try:
        wanted = float(epoch or "")
    except ValueError:
        return None
    return next((s for s in snapshots_of(job) if abs(float(s["epoch"]) - wanted) < 1e-9), None)


def choose_snapshot(job: Job, epoch: str | float | None) -> dict:
    """The snapshot at ``epoch`` (as typed: "2", "2.0"), or the last one when ``epoch`` is empty.

    Raises :class:`SpecError` when the model has none yet, or none at that epoch, or its files are gone.
    """
    snapshots = snapshots_of(job)
    if not snapshots:
        raise SpecError(f"model {job.id} has no snapshot yet: wait for its first epoch to finish")
    chosen = snapshots[-1] if epoch in (None, "", "last") else find_snapshot(job, str(epoch))
    if chosen is None:
        have = ", ".join(f"{float(s['epoch']):g}" for s in snapshots)
        raise SpecError(f"model {job.id} has no snapshot at epoch {epoch} (it has {have})")
    prefix = Path(job.directory) / chosen["path"]
    # A PyTorch snapshot is one file; a TensorFlow checkpoint is a prefix with an index.
    if not (prefix.is_file() or Path(f"{prefix}.index").is_file()):
        raise SpecError(f"the snapshot of epoch {float(chosen['epoch']):g} was deleted from {job.directory}")
    return chosen


def model_spec(job: Job, store: JobStore, epoch: str | float | None = None) -> ModelSpec:
    """The spec of a trained image classification model at a snapshot (the last by default)."""
    if job.type == "pretrained":
        return pretrained_spec(job)
    chosen = choose_snapshot(job, epoch)
    directory = Path(job.directory)
    dataset = store.get(job.form.get("dataset", ""))
    if dataset is None:
        raise SpecError(f"the dataset of model {job.id} was deleted: its labels and mean are gone")
    # Imported here: tools load specs without the web forms that module defines.
    from digits.datasets.generic import dataset_info

    info = dataset_info(dataset)
    classification = dataset.kind == "image-classification"
    detection = detection_extra(info)
    if classification and not info.labels:
        raise SpecError(f"{Path(dataset.directory) / 'labels.txt'} is missing: was the dataset deleted?")
    mean = Path(dataset.directory) / "mean.npy"
    has_mean = mean.is_file()
    return ModelSpec(
        network=str(directory / "network.py"),
        checkpoint=str(directory / chosen["path"]),
        labels=info.labels,
        image_shape=info.feature_dims,
        input_dtype=info.feature_dtype,
        task="classification" if classification else "detection" if detection else "generic",
        # A generic dataset's views need the dataset and its extension; detection, how images were padded.
        extra={} if classification else {"dataset_id": dataset.id, "extension_id": info.extension_id, **detection},
        resize_mode=dataset.form.get("resize_mode", "squash"),
        mean=str(mean) if has_mean else None,
        subtract_mean=job.form.get("use_mean", "image") if has_mean else "none",
        crop_size=int(job.form["crop_size"]) if job.form.get("crop_size") else None,
        snapshot_epoch=float(chosen["epoch"]),
        fine_tune=job.form.get("method") in ("previous", "pretrained"),
        framework=job.form.get("framework") or "tensorflow",
    )


def detection_extra(info) -> dict[str, Any]:
    """For a detection dataset (``image-object-detection``), ``{"detection_pad": [width, height] or None}``:
    inference pads images as the dataset did, before resizing; for other datasets, nothing."""
    if info.extension_id != "image-object-detection":
        return {}
    userdata = info.extension_userdata
    width, height = userdata.get("padding_image_width"), userdata.get("padding_image_height")
    return {"detection_pad": [int(width), int(height)] if width and height else None}


def pretrained_spec(job: Job) -> ModelSpec:
    """The spec of a pretrained model job: its ``info.json``, paths made absolute in its directory."""
    import json

    directory = Path(job.directory)
    data = json.loads((directory / "info.json").read_text())
    return spec_from_info(data, directory)


def spec_from_info(info: dict[str, Any], directory: Path) -> ModelSpec:
    """A spec from an archive's ``info.json`` whose paths are relative to ``directory``."""
    spec = ModelSpec.from_dict(info)
    spec.network = str(directory / spec.network)
    spec.checkpoint = str(directory / spec.checkpoint)
    if spec.mean:
        spec.mean = str(directory / spec.mean)
    return spec
