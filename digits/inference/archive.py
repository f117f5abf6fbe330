"""Model archives: a snapshot with everything needed to use it elsewhere, streamed out and read back safely.

An archive (tar, tar.gz or zip) holds, at its top level, ``network.py``, ``labels.txt``, ``mean.npy`` (when
training subtracted a mean), the snapshot's checkpoint files (TensorFlow: ``<prefix>.index``, ``<prefix>.data-*``;
PyTorch: the one ``snapshot_<epoch>.pt``) and ``info.json``: the :class:`~digits.inference.spec.ModelSpec` with
paths relative to the archive, plus the framework (``tensorflow`` or ``torch``: which worker serves it), the
DIGITS version, the job's name and id and the dataset's name. A pretrained model's job
directory has the same layout, so an archive unpacked into one is a pretrained model.

Writing streams: an archive is produced piece by piece as the response is sent, never whole in memory.
Reading refuses links, special files and members that would land outside the destination, and checks that
what ``info.json`` names is there. Exports are made by the framework's child tool (``digits.tools.tensorflow.export``:
a SavedModel or ONNX; ``digits.tools.torch.export``: a ``torch.export`` program or ONNX); :func:`export_model`
runs it, since the web process imports neither framework.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import stat
import sys
import tarfile
import tempfile
import time
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from digits import __version__
from digits.busy import Slots
from digits.inference.spec import ModelSpec, SpecError
from digits.processes import run_to_end

INFO_FILE = "info.json"
NETWORK_FILE = "network.py"
LABELS_FILE = "labels.txt"
MEAN_FILE = "mean.npy"
FRAMEWORK = "tensorflow"  # what an info.json that names no framework was made by
FRAMEWORKS = {"tensorflow": "TensorFlow", "torch": "PyTorch"}
# Download formats: the suffix of the URL (and of the file), its media type.
FORMATS = {"tar": "application/x-tar", "tar.gz": "application/gzip", "zip": "application/zip"}
# Each framework's export formats, its own first (the default), and the tool that makes them.
EXPORT_FORMATS = {"tensorflow": ("savedmodel", "onnx"), "torch": ("torch-export", "onnx")}
EXPORT_TOOLS = {"tensorflow": "digits.tools.tensorflow.export", "torch": "digits.tools.torch.export"}
CHUNK = 1 << 20
# What an uploaded archive may unpack to: this many times its own size (weights barely compress, so a real
# model is near 1x; a bomb is thousands), never less than the floor (small text files compress well), and
# at most this many members (a model has a handful of files).
MAX_UNPACK_RATIO = 20
UNPACK_FLOOR_BYTES = 1 << 20
MAX_MEMBERS = 10_000


class ArchiveError(ValueError):
    """An archive or an upload that cannot become a model; the message says why, for the user."""


class ExportError(RuntimeError):
    """The export tool failed; ``user_line`` is the line of the network source when it is to blame."""

    def __init__(self, message: str, user_line: int | None = None):
        super().__init__(message)
        self.user_line = user_line


@dataclass
class Member:
    """One file of an archive: its name in the archive and where its bytes come from (a file or ``data``)."""

    name: str
    path: Path | None = None
    data: bytes | None = None

    @property
    def size(self) -> int:
        return len(self.data) if self.data is not None else self.path.stat().st_size

    def chunks(self) -> Iterator[bytes]:
        if self.data is not None:
            yield self.data
            return
        with open(self.path, "rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk


# -- what goes in an archive ---------------------------------------------------------------------------


def checkpoint_files(prefix: str | Path, framework: str = FRAMEWORK) -> list[Path]:
    """The files of a checkpoint: for TensorFlow, ``prefix``'s index and data shards (not the optional meta
    graph); for PyTorch, the snapshot file ``prefix`` itself."""
    prefix = Path(prefix)
    if framework == "torch":
        return [prefix]
    files = sorted(prefix.parent.glob(glob_escape(prefix.name) + ".data-*"))
    return [prefix.with_name(prefix.name + ".index"), *files]


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def model_members(spec: ModelSpec, about: dict[str, Any]) -> tuple[dict[str, Any], list[Member]]:
    """``info.json``'s content and the archive's members for a model at the snapshot of ``spec``.

    ``about`` names where it comes from (``job_name``, ``job_id``, ``dataset_name``); it is stored as is.
    """
    checkpoint = Path(spec.checkpoint)
    members = [Member(NETWORK_FILE, Path(spec.network)), Member(LABELS_FILE, data=labels_text(spec.labels))]
    if spec.mean:
        members.append(Member(MEAN_FILE, Path(spec.mean)))
    members += [Member(path.name, path) for path in checkpoint_files(checkpoint, spec.framework)]
    missing = [str(m.path) for m in members if m.path is not None and not m.path.is_file()]
    if missing:
        raise SpecError(f"files of the model are missing: {', '.join(missing)}")
    info = spec.to_dict()
    info.update(network=NETWORK_FILE, checkpoint=checkpoint.name, mean=MEAN_FILE if spec.mean else None)
    info.update(framework=spec.framework, digits_version=__version__, labels_file=LABELS_FILE, **about)
    info = {k: v for k, v in info.items() if k != "extra" or v}
    members.append(Member(INFO_FILE, data=(json.dumps(info, indent=1, sort_keys=True) + "\n").encode()))
    return info, members


def labels_text(labels: list[str]) -> bytes:
    return "".join(f"{label}\n" for label in labels).encode()


def archive_name(job_name: str, epoch: float | None) -> str:
    """A file name for downloads of a model: its name in safe characters, and the snapshot's epoch."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", job_name).strip("-.") or "model"
    return f"{slug}-epoch-{epoch:g}" if epoch is not None else slug


# -- writing, as a stream ----------------------------------------------------------------------------


def stream_archive(members: Iterable[Member], fmt: str) -> Iterator[bytes]:
    """The bytes of an archive of ``members`` in ``fmt`` (a key of :data:`FORMATS`), produced as they are read."""
    if fmt == "zip":
        return stream_zip(members)
    if fmt in ("tar", "tar.gz"):
        return stream_tar(members, compress=fmt == "tar.gz")
    raise ArchiveError(f"unknown archive format {fmt!r}; use one of: {', '.join(FORMATS)}")


def stream_tar(members: Iterable[Member], compress: bool = False) -> Iterator[bytes]:
    """A POSIX tar of ``members``, gzip-compressed with ``compress``, one member's chunk at a time."""
    gzip = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS) if compress else None

    def out(data: bytes) -> bytes:
        return gzip.compress(data) if gzip else data

    now = int(time.time())
    written = 0
    for member in members:
        info = tarfile.TarInfo(member.name)
        info.size = member.size
        info.mode = 0o644
        info.mtime = int(member.path.stat().st_mtime) if member.path else now
        header = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
        yield out(header)
        copied = 0
        for chunk in member.chunks():
            copied += len(chunk)
            yield out(chunk)
        if copied != info.size:
            raise ArchiveError(f"{member.name} changed while it was archived")
        padding = -info.size % tarfile.BLOCKSIZE
        yield out(b"\0" * padding)
        written += len(header) + info.size + padding
    # Two zero blocks end the archive; tar pads the whole to a multiple of its record size.
    end = 2 * tarfile.BLOCKSIZE
    end += -(written + end) % tarfile.RECORDSIZE
    yield out(b"\0" * end)
    if gzip:
        yield gzip.flush()


class _Sink:
    """A write-only, unseekable file whose bytes are taken out as they come (zipfile streams to it)."""

    def __init__(self):
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data, self._parts = b"".join(self._parts), []
        return data


def stream_zip(members: Iterable[Member]) -> Iterator[bytes]:
    """A zip of ``members`` (deflated), written with data descriptors so nothing needs seeking back."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as archive:
        for member in members:
            mtime = member.path.stat().st_mtime if member.path else None
            info = zipfile.ZipInfo(member.name, time.localtime(mtime)[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            with archive.open(info, "w", force_zip64=member.size > zipfile.ZIP64_LIMIT // 2) as dest:
                for chunk in member.chunks():
                    dest.write(chunk)
                    if written := sink.take():  # deflate keeps small writes to itself for a while
                        yield written
            yield sink.take()
    yield sink.take()


def directory_members(directory: Path) -> list[Member]:
    """Every file under ``directory``, named by its path relative to it (for zipping an export)."""
    return [
        Member(path.relative_to(directory).as_posix(), path) for path in sorted(directory.rglob("*")) if path.is_file()
    ]


# -- reading, safely -----------------------------------------------------------------------------------


def safe_member_name(name: str) -> str | None:
    """``name`` as a relative POSIX path inside the archive; None for a directory entry or the archive's root.

    Raises :class:`ArchiveError` for absolute names and names that climb out with ``..``.
    """
    if "\0" in name or "\\" in name:
        raise ArchiveError(f"archive member {name!r}: backslashes and NUL bytes are not accepted")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise ArchiveError(f"archive member {name!r} has an absolute path; members must be relative")
    parts = [p for p in PurePosixPath(name).parts if p not in ("", ".")]
    if ".." in parts:
        raise ArchiveError(f"archive member {name!r} points outside the archive ('..')")
    return "/".join(parts) or None


def extract_archive(path: Path, dest: Path, *, max_ratio: float = MAX_UNPACK_RATIO, max_members: int = MAX_MEMBERS
                    ) -> None:  # fmt: skip
    """Unpack the tar, tar.gz or zip at ``path`` into the existing directory ``dest``.

    Only regular files and directories are accepted; when every member lies in one top-level folder with
    ``info.json``, that folder is unpacked as the root. Raises :class:`ArchiveError` (leaving ``dest`` to the
    caller to remove) for anything else, for archives without ``info.json``, with more than ``max_members``
    members, or whose members add up to more than ``max_ratio`` times the archive's size. Sizes are the
    members' headers: the readers never return more than a member declares.
    """
    size = path.stat().st_size
    max_bytes = max(int(size * max_ratio), UNPACK_FLOOR_BYTES)
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                infos = archive.infolist()
                _check_count(len(infos), max_members)
                files = [(_zip_name(info), info.file_size, info) for info in infos if not info.is_dir()]
                _unpack(files, archive.open, dest, max_bytes, max_ratio)
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise ArchiveError(f"the archive is damaged: {exc}") from None
    elif _is_tar(path):
        try:
            with tarfile.open(path, "r:*") as archive:
                files = []
                # Members are counted while the headers are read: a tar of a million empty files stops early.
                for count, member in enumerate(archive, start=1):
                    _check_count(count, max_members)
                    if not member.isdir():
                        files.append((_tar_name(member), member.size, member))
                _unpack(files, archive.extractfile, dest, max_bytes, max_ratio)
        except (tarfile.TarError, zlib.error, EOFError) as exc:
            raise ArchiveError(f"the archive is damaged: {exc}") from None
    else:
        raise ArchiveError("the upload is not a tar, tar.gz or zip archive")


def _check_count(count: int, max_members: int) -> None:
    if count > max_members:
        raise ArchiveError(f"the archive has more than {max_members:,} members; a model archive has a few files")


def _unpack(files: list[tuple[str, int, Any]], open_member, dest: Path, max_bytes: int, max_ratio: float) -> None:
    """Copy ``(name, size, member)`` files (names already checked) under ``dest``, from its root folder;
    refused when they add up to more than ``max_bytes`` (``max_ratio`` times the archive, for the message)."""
    names = [name for name, _, _ in files]
    if len(set(names)) != len(names):
        raise ArchiveError("the archive lists a file twice")
    total = sum(size for _, size, _ in files)
    if total > max_bytes:
        raise ArchiveError(
            f"the archive unpacks to {total / (1 << 20):,.1f} MiB, more than {max_ratio:g} times its own size "
            f"({max_bytes / (1 << 20):,.1f} MiB): refused as a possible archive bomb"
        )
    root = _archive_root(names)
    for name, _, member in files:
        if not name.startswith(root):
            continue
        target = dest.joinpath(*name[len(root) :].split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        with open_member(member) as source, open(target, "xb") as out:
            shutil.copyfileobj(source, out, CHUNK)


def _archive_root(names: list[str]) -> str:
    if INFO_FILE in names:
        return ""
    tops = {name.split("/", 1)[0] for name in names}
    if len(tops) == 1 and f"{next(iter(tops))}/{INFO_FILE}" in names:
        return next(iter(tops)) + "/"
    raise ArchiveError(
        f"the archive has no {INFO_FILE}: it is not a DIGITS model archive "
        "(upload the network, weights and labels as separate files instead)"
    )


def _is_tar(path: Path) -> bool:
    try:
        with tarfile.open(path, "r:*"):
            return True
    except (tarfile.TarError, OSError, EOFError, zlib.error):
        return False


def _tar_name(member: tarfile.TarInfo) -> str:
    """The checked name of a tar member that is a file; links and special files are refused."""
    name = safe_member_name(member.name)
    if not member.isfile():
        kind = "a link" if member.issym() or member.islnk() else "a special file"
        raise ArchiveError(f"archive member {member.name!r} is {kind}; only files are accepted")
    if name is None:
        raise ArchiveError(f"archive member {member.name!r} has no name")
    return name


def _zip_name(info: zipfile.ZipInfo) -> str:
    """The checked name of a zip member that is a file; links (a Unix mode in its attributes) are refused."""
    name = safe_member_name(info.filename)
    if stat.S_IFMT(info.external_attr >> 16) not in (0, stat.S_IFREG):
        raise ArchiveError(f"archive member {info.filename!r} is a link or a special file; only files are accepted")
    if name is None:
        raise ArchiveError(f"archive member {info.filename!r} has no name")
    return name


# -- checking a model directory ---------------------------------------------------------------------------


def read_model_dir(directory: Path) -> dict[str, Any]:
    """The ``info.json`` of an unpacked archive (or a pretrained model's directory), checked and completed.

    Every path it names must be a file inside ``directory``; labels come from ``labels.txt`` when
    ``info.json`` has none. Raises :class:`ArchiveError` saying what is missing or wrong.
    """
    try:
        info = json.loads((directory / INFO_FILE).read_text())
    except FileNotFoundError:
        raise ArchiveError(f"{INFO_FILE} is missing") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ArchiveError(f"{INFO_FILE} is not valid JSON: {exc}") from None
    if not isinstance(info, dict):
        raise ArchiveError(f"{INFO_FILE} must hold a JSON object")
    framework = info.get("framework", FRAMEWORK)
    if framework not in FRAMEWORKS:
        raise ArchiveError(
            f"the model is for {framework!r}; this server runs {' and '.join(FRAMEWORKS)} models "
            f"(the framework of {INFO_FILE})"
        )
    for key in ("network", "checkpoint", "image_shape"):
        if not info.get(key):
            raise ArchiveError(f"{INFO_FILE} does not say its {key}")
    info["image_shape"] = check_image_shape(info["image_shape"])
    network = inside(directory, info["network"], "network")
    problem = network_problem(network.read_text(errors="replace"), framework)
    if problem:
        raise ArchiveError(f"{info['network']}: {problem}")
    check_checkpoint(directory, info["checkpoint"], framework)
    if info.get("mean"):
        inside(directory, info["mean"], "mean")
    if not info.get("labels"):
        labels_file = inside(directory, info.get("labels_file") or LABELS_FILE, "labels")
        info["labels"] = [line.strip() for line in labels_file.read_text().splitlines() if line.strip()]
    if not isinstance(info["labels"], list) or not info["labels"]:
        raise ArchiveError("the model has no labels")
    if info.get("subtract_mean", "none") not in ("none", "image", "pixel"):
        raise ArchiveError(f"subtract_mean must be none, image or pixel, not {info['subtract_mean']!r}")
    if info.get("subtract_mean", "none") != "none" and not info.get("mean"):
        raise ArchiveError("the model subtracts a mean but has no mean file")
    info["framework"] = framework
    return info


def check_checkpoint(directory: Path, checkpoint: str, framework: str) -> None:
    """ArchiveError when ``checkpoint`` is not a checkpoint of ``framework`` in ``directory`` (one of the other
    framework is named as such, with what to change)."""
    if framework == "torch":
        if (directory / f"{checkpoint}.index").is_file():
            raise ArchiveError(
                f"{INFO_FILE} says framework 'torch' but the checkpoint {checkpoint} is a TensorFlow checkpoint: "
                "archive a PyTorch snapshot_*.pt, or say framework 'tensorflow'"
            )
        if not zipfile.is_zipfile(inside(directory, checkpoint, "checkpoint")):
            raise ArchiveError(f"the checkpoint {checkpoint} is not a PyTorch snapshot (torch.save writes a zip file)")
        return
    if (directory / checkpoint).is_file() and zipfile.is_zipfile(directory / checkpoint):
        raise ArchiveError(
            f"the checkpoint {checkpoint} is a PyTorch snapshot but {INFO_FILE} says framework 'tensorflow': "
            "say framework 'torch' (with a PyTorch network)"
        )
    prefix = inside(directory, checkpoint + ".index", "checkpoint").with_suffix("")
    if not list(prefix.parent.glob(glob_escape(prefix.name) + ".data-*")):
        raise ArchiveError(f"the checkpoint {checkpoint} has an index but no data file")


def check_image_shape(shape: Any) -> list[int]:
    """``[height, width, channels]`` as integers; channels 1 or 3."""
    try:
        height, width, channels = (int(d) for d in shape)
    except (TypeError, ValueError):
        raise ArchiveError(f"image_shape must be [height, width, channels], not {shape!r}") from None
    if height < 1 or width < 1 or channels not in (1, 3):
        raise ArchiveError(f"image_shape {shape!r}: sizes must be positive and channels 1 or 3")
    return [height, width, channels]


def inside(directory: Path, relative: str, what: str) -> Path:
    """The file ``relative`` names in ``directory``; an error if it is missing or would be outside."""
    if not isinstance(relative, str) or not relative:
        raise ArchiveError(f"{INFO_FILE}: the {what} path must be a file name")
    path = (directory / relative).resolve()
    if not path.is_relative_to(directory.resolve()):
        raise ArchiveError(f"{INFO_FILE}: the {what} path {relative!r} points outside the model")
    if not path.is_file():
        raise ArchiveError(f"the {what} file {relative} is missing")
    return path


def network_problem(source: str, framework: str = FRAMEWORK) -> str | None:
    """What is wrong with a network's source that can be seen without running it, or None."""
    try:
        tree = ast.parse(source, filename=NETWORK_FILE)
    except SyntaxError as exc:
        return f"SyntaxError on line {exc.lineno}: {exc.msg}"
    if not any(isinstance(node, ast.ClassDef) and node.name == "UserModel" for node in tree.body):
        base = "torch.nn.Module" if framework == "torch" else "Tower"
        return f"the network must define class UserModel({base})"
    return None


# -- exporting (a child process) ---------------------------------------------------------------------------


def export_model(spec: ModelSpec, cache: Path, fmt: str, timeout: float = 600.0, *, slots: Slots | None = None
                 ) -> Path:  # fmt: skip
    """The export of ``spec`` in ``fmt`` (one of its framework's :data:`EXPORT_FORMATS`), made by the framework's
    export tool once and kept in ``cache``.

    With ``slots``, the tool runs only in one of them: when all are taken, :class:`~digits.busy.Busy` is raised
    at once (an export already made is answered all the same). Raises :class:`ExportError` with the tool's
    message when it fails.
    """
    formats = EXPORT_FORMATS.get(spec.framework, ())
    if fmt not in formats:
        raise ArchiveError(
            f"a {FRAMEWORKS.get(spec.framework, spec.framework)} model has no export format {fmt!r}; "
            f"use one of: {', '.join(formats)}"
        )
    epoch = f"epoch-{spec.snapshot_epoch:g}" if spec.snapshot_epoch is not None else "model"
    done = cache / f"{epoch}-{fmt}"
    if done.is_dir():
        return done
    with slots.take() if slots else nullcontext():
        return _run_export(spec, cache, fmt, done, timeout)


def _run_export(spec: ModelSpec, cache: Path, fmt: str, done: Path, timeout: float) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=cache))
    try:
        (work / "spec.json").write_text(json.dumps(spec.to_dict()))
        command = [sys.executable, "-m", EXPORT_TOOLS[spec.framework], "--spec", "spec.json", "--out", "out"]
        if fmt == "onnx":
            command.append("--onnx")
        # Exporting needs no GPU; it must not take memory from the training that the scheduler placed there.
        env = {"CUDA_VISIBLE_DEVICES": "", "PYTHONUNBUFFERED": "1"}
        returncode, events = run_to_end(command, log=work / "export.log", timeout=timeout, cwd=work, env=env)
        if returncode is None:
            raise ExportError(f"the export took more than {timeout:g} s")
        error = next((e for e in events if e.get("event") == "error"), None)
        if returncode != 0 or error:
            message = error["message"] if error else _log_end(work / "export.log")
            raise ExportError(message, error.get("user_line") if error else None)
        try:
            os.rename(work / "out", done)
        except OSError:
            if not done.is_dir():  # else another request made the same export meanwhile
                raise
        return done
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _log_end(path: Path, lines: int = 5) -> str:
    text = path.read_text(errors="replace").strip().splitlines()
    return " | ".join(text[-lines:]) or "the export tool failed"
