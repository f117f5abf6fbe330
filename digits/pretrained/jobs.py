"""Pretrained model jobs: made from a model's snapshot, from a DIGITS model archive, or from separate files.

A pretrained model's directory has the layout of a model archive (see :mod:`digits.inference.archive`):
``network.py``, ``labels.txt``, ``mean.npy`` (optional), the checkpoint files and ``info.json``, whose
paths are relative to it. It runs nothing: its one task, "Import", is done when the job is made, and the
job is built in a staging directory so that a refused upload leaves nothing behind.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from digits import __version__
from digits.imaging import RESIZE_MODES, ImageError, load_image
from digits.inference.archive import (
    EXPORT_FORMATS,
    FRAMEWORK,
    INFO_FILE,
    LABELS_FILE,
    MAX_MEMBERS,
    MAX_UNPACK_RATIO,
    MEAN_FILE,
    NETWORK_FILE,
    ArchiveError,
    Member,
    check_image_shape,
    extract_archive,
    glob_escape,
    labels_text,
    model_members,
    read_model_dir,
)
from digits.inference.spec import ModelSpec, model_spec, pretrained_spec
from digits.jobs import Job, JobStore, Status, Task, new_job_id
from digits.jobs.store import write_json_atomic

TYPE = "pretrained"
KIND = "image-classification"


@dataclass
class Upload:
    """A file sent by the user: its name as they had it and its content (any readable binary stream)."""

    filename: str
    stream: IO[bytes]


def from_snapshot(store: JobStore, model: Job, epoch: str | None, name: str, username: str) -> Job:
    """A pretrained model copied from ``model``'s snapshot at ``epoch`` (the last when empty).

    Raises :class:`~digits.inference.spec.SpecError` when the model has no such snapshot or lost its dataset.
    """
    spec = model_spec(model, store, epoch)
    dataset = store.get(model.form.get("dataset", ""))
    about = {"job_name": model.name, "job_id": model.id, "dataset_name": dataset.name if dataset else None}
    info, members = model_members(spec, about)
    job_id = new_job_id()
    with store.staging(job_id) as staging:
        for member in members:
            target = staging / member.name
            if member.data is not None:
                target.write_bytes(member.data)
            else:
                shutil.copyfile(member.path, target)
        source = {"source": "snapshot", "model": model.id, "model_name": model.name,
                  "snapshot_epoch": spec.snapshot_epoch}  # fmt: skip
        return _add(store, staging, job_id, name or f"{model.name} (epoch {spec.snapshot_epoch:g})", username, source)


def from_archive(store: JobStore, archive: Path, filename: str, name: str, username: str, *,
                 max_ratio: float = MAX_UNPACK_RATIO, max_members: int = MAX_MEMBERS) -> Job:  # fmt: skip
    """A pretrained model unpacked from a DIGITS model archive (tar, tar.gz or zip with ``info.json``).

    Raises :class:`~digits.inference.archive.ArchiveError` (and leaves nothing behind) when it is not one, or
    when it unpacks to more than ``max_ratio`` times its size or has more than ``max_members`` members.
    """
    job_id = new_job_id()
    with store.staging(job_id) as staging:
        extract_archive(archive, staging, max_ratio=max_ratio, max_members=max_members)
        info = read_model_dir(staging)
        write_json_atomic(staging / INFO_FILE, info)
        if not (staging / LABELS_FILE).is_file():
            (staging / LABELS_FILE).write_bytes(labels_text(info["labels"]))
        name = name or info.get("job_name") or _stem(filename) or "pretrained model"
        return _add(store, staging, job_id, name, username, {"source": "archive", "filename": filename})


def from_files(
    store: JobStore,
    *,
    weights: list[Upload],
    network: Upload,
    labels: Upload,
    mean: Upload | None,
    image_shape: list[int],
    resize_mode: str,
    subtract_mean: str | None,
    crop_size: int | None,
    name: str,
    username: str,
) -> Job:
    """A pretrained model from separate files: a checkpoint (index and data files), a network, labels, a mean.

    ``mean`` is a ``.npy`` array or an image of the input size. Raises :class:`ArchiveError` saying which
    file is missing or wrong; nothing is left behind then.
    """
    image_shape = check_image_shape(image_shape)
    if resize_mode not in RESIZE_MODES:
        raise ArchiveError(f"resize_mode must be one of {', '.join(RESIZE_MODES)}")
    job_id = new_job_id()
    with store.staging(job_id) as staging:
        checkpoint = _save_checkpoint(weights, staging)
        _save(network, staging / NETWORK_FILE)
        _save(labels, staging / LABELS_FILE)
        if mean is not None:
            _save_mean(mean, staging / MEAN_FILE, image_shape)
        subtract = subtract_mean or ("image" if mean is not None else "none")
        spec = ModelSpec(network=NETWORK_FILE, checkpoint=checkpoint, labels=[], image_shape=image_shape,
                         resize_mode=resize_mode, mean=MEAN_FILE if mean is not None else None,
                         subtract_mean=subtract, crop_size=crop_size)  # fmt: skip
        info = {**spec.to_dict(), "framework": FRAMEWORK, "digits_version": __version__, "labels_file": LABELS_FILE,
                "job_name": name, "extra": {}}  # fmt: skip
        write_json_atomic(staging / INFO_FILE, info)
        # Checked as an uploaded archive is: labels read from labels.txt, every named file present.
        write_json_atomic(staging / INFO_FILE, read_model_dir(staging))
        source = {"source": "files", "filenames": [u.filename for u in [*weights, network, labels, mean] if u]}
        return _add(store, staging, job_id, name or network.filename, username, source)


def _add(store: JobStore, staging: Path, job_id: str, name: str, username: str, source: dict[str, Any]) -> Job:
    now = time.time()
    task = Task(id="import", name="Import", tool="", args=[], status=Status.DONE, progress=1.0, started=now,
                finished=now, data=source)  # fmt: skip
    job = Job(id=job_id, type=TYPE, kind=KIND, name=name.strip(), username=username, directory=str(staging),
              form=source, tasks=[task])  # fmt: skip
    return store.add(job, staging)


def _stem(filename: str) -> str:
    base = Path(filename or "").name
    return re.sub(r"\.(tar\.gz|tgz|tar|zip)$", "", base, flags=re.IGNORECASE)


def _save(upload: Upload, target: Path) -> None:
    with open(target, "xb") as out:
        shutil.copyfileobj(upload.stream, out, 1 << 20)
    if target.stat().st_size == 0:
        raise ArchiveError(f"{upload.filename or target.name} is empty")


def _save_checkpoint(weights: list[Upload], directory: Path) -> str:
    """Save a checkpoint's files under their own names; returns its prefix (the index file's name less .index)."""
    names = [Path(u.filename or "").name for u in weights]
    for filename in names:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", filename):
            raise ArchiveError(f"weights file {filename!r}: use letters, digits, '.', '_' and '-' in names")
    indexes = [n for n in names if n.endswith(".index")]
    if len(indexes) != 1:
        raise ArchiveError(
            "weights_file: send one TensorFlow checkpoint: its .index file and its .data-* file(s) "
            f"(got {', '.join(names) or 'nothing'})"
        )
    prefix = indexes[0].removesuffix(".index")
    strays = [n for n in names if n != indexes[0] and not n.startswith(prefix + ".data-")]
    if strays or len(names) < 2:
        raise ArchiveError(f"weights_file: the checkpoint {prefix} needs {prefix}.data-* files, and only those")
    for upload, filename in zip(weights, names, strict=True):
        _save(upload, directory / filename)
    return prefix


def _save_mean(upload: Upload, target: Path, image_shape: list[int]) -> None:
    """The mean image as ``mean.npy`` (float32, ``H x W x C``), from a ``.npy`` file or an image."""
    data = upload.stream.read()
    try:
        mean = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError):
        try:
            image = load_image(io.BytesIO(data), 1 if image_shape[2] == 1 else 3)
        except ImageError as exc:
            raise ArchiveError(f"mean_file {upload.filename}: not a .npy array, nor a usable image: {exc}") from None
        mean = np.asarray(image, np.float32)
    mean = mean[:, :, None] if mean.ndim == 2 else mean
    if list(mean.shape) != list(image_shape):
        raise ArchiveError(f"mean_file {upload.filename}: its shape {list(mean.shape)} is not {image_shape}")
    np.save(target, mean.astype(np.float32))


def pretrained_models(store: JobStore) -> list[Job]:
    return store.all(lambda j: j.type == TYPE)


def files_of(job: Job) -> list[dict[str, Any]]:
    """The files that make the model (what an archive of it holds), with their sizes."""
    directory = Path(job.directory)
    info = json.loads((directory / INFO_FILE).read_text())
    names = [INFO_FILE, info["network"], info.get("labels_file") or LABELS_FILE]
    if info.get("mean"):
        names.append(info["mean"])
    prefix = directory / info["checkpoint"]
    # A PyTorch snapshot is the file itself; a TensorFlow checkpoint, the files that start with its prefix.
    checkpoint = [prefix] if prefix.is_file() else sorted(prefix.parent.glob(glob_escape(prefix.name) + ".*"))
    names += [p.relative_to(directory).as_posix() for p in checkpoint]
    return [{"name": n, "size": (directory / n).stat().st_size} for n in names if (directory / n).is_file()]


def archive_members(job: Job) -> tuple[dict[str, Any], list[Member]]:
    """``info.json`` and the members of the pretrained model's archive: the same layout again."""
    spec = pretrained_spec(job)
    info = json.loads((Path(job.directory) / INFO_FILE).read_text())
    about = {k: info.get(k) for k in ("job_name", "job_id", "dataset_name")}
    return model_members(spec, about)


def describe(job: Job) -> dict[str, Any]:
    """What the pretrained model's page and its JSON twin show."""
    info = json.loads((Path(job.directory) / INFO_FILE).read_text())
    spec = pretrained_spec(job)
    return {
        **job.summary(),
        "directory": job.directory,
        "notes": job.notes,
        "status_history": job.status_history,
        "source": job.form,
        "framework": info.get("framework", FRAMEWORK),
        "export_formats": EXPORT_FORMATS.get(info.get("framework", FRAMEWORK), ()),
        "digits_version": info.get("digits_version"),
        "origin": {k: info.get(k) for k in ("job_name", "job_id", "dataset_name")},
        "labels": spec.labels,
        "image_shape": spec.image_shape,
        "resize_mode": spec.resize_mode,
        "subtract_mean": spec.subtract_mean,
        "crop_size": spec.crop_size,
        "snapshot_epoch": spec.snapshot_epoch,
        "fine_tune": spec.fine_tune,
        "files": files_of(job),
    }
