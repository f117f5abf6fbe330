"""Input for PyTorch training: a dataset's LMDB records decoded with ``digits.records`` (protobuf, Pillow, numpy;
no TensorFlow), batched on a background thread, then moved to the device where the float work happens.

Databases small enough (``CACHE_BYTES``) are decoded whole before training, so every batch only indexes
memory. Larger ones are decoded batch by batch on a reader thread while the device trains on the previous
batch. (Decoding on a thread while training on small batches would cost more than it saves: each torch call
of the training thread then waits for the interpreter lock the decoder holds.) On the
device :class:`Prepare` turns a batch into NCHW float32, augments training images, subtracts the mean (or
whitens) and crops, as the TensorFlow pipeline does, in the same order.
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

from digits.records import decode_array, decode_record, record_key
from digits.tools.lmdb_info import LmdbInfo, open_db
from digits.tools.training import AugmentationChoices

# Decoded images kept in memory per database; past it every epoch decodes again.
CACHE_BYTES = 2 << 30
PREFETCH_BATCHES = 4


class Records:
    """The decoded images and labels of one database, read by index; decoded images are kept when they fit."""

    def __init__(self, info: LmdbInfo):
        self.info = info
        self.env = open_db(info.path)
        image_bytes = int(np.prod(info.shape)) * np.dtype(info.dtype).itemsize
        label_bytes = int(np.prod(info.label.shape)) * 4 if info.label.kind == "array" else 8
        self.cached = info.entries * (image_bytes + label_bytes) <= CACHE_BYTES
        n = info.entries if self.cached else 0
        self.images = np.empty((n, *info.shape), np.dtype(info.dtype))
        self.labels = np.empty((n, *self.label_shape()), self.label_dtype())
        self.filled = np.zeros(n, bool)

    def label_shape(self) -> list[int]:
        """The shape of one label: ``[]`` for classes, ``[K]`` for vectors, ``[H, W, C]`` for arrays."""
        return self.info.label.shape if self.info.label.kind in ("values", "array") else []

    def label_dtype(self) -> np.dtype:
        """int64 for classes (and none, as -1), float32 for vectors and arrays."""
        return np.dtype(np.int64 if self.info.label.kind in ("class", "none") else np.float32)

    def preload(self) -> None:
        """Decode every record now, when the database is kept in memory (nothing otherwise)."""
        if self.cached and not self.filled.all():
            for start in range(0, self.info.entries, 1024):
                self.batch(np.arange(start, min(start + 1024, self.info.entries)))

    @property
    def in_memory(self) -> bool:
        """Whether every record is decoded and kept."""
        return self.cached and bool(self.filled.all())

    def batch(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The images (NHWC, stored dtype) and labels of the records at ``indices``."""
        if self.cached:
            todo = indices[~self.filled[indices]]
            if len(todo):
                self.decode_into(todo, self.images, self.labels, todo)
                self.filled[todo] = True
            return self.images[indices], self.labels[indices]
        images = np.empty((len(indices), *self.info.shape), self.images.dtype)
        labels = np.empty((len(indices), *self.label_shape()), self.labels.dtype)
        self.decode_into(indices, images, labels, np.arange(len(indices)))
        return images, labels

    def decode_into(self, indices, images: np.ndarray, labels: np.ndarray, slots) -> None:
        """Decode the records at ``indices`` into ``images[slots]`` and ``labels[slots]``."""
        info, kind, shape = self.info, self.info.label.kind, tuple(self.info.shape)
        with self.env.begin(buffers=False) as txn:
            for index, slot in zip(indices, slots, strict=True):
                record = decode_record(txn.get(record_key(int(index))))
                images[slot] = decode_array(record.encoded, info.format, shape, info.dtype)
                if kind == "class":
                    labels[slot] = record.label
                elif kind == "values":
                    labels[slot] = record.label_values
                elif kind == "array":
                    array = record.label_array
                    labels[slot] = decode_array(array.encoded, array.format, array.shape, array.dtype)
                else:
                    labels[slot] = -1

    def close(self) -> None:
        self.env.close()


class Batches:
    """Batches of ``(images uint8 NHWC, labels)`` numpy arrays of one database, read ahead on a thread.

    Training batches (``training``) never end: each epoch visits the records in a new order (``shuffle``, from
    ``seed``); batches run across epoch ends, as the TensorFlow tool counts epochs by images seen. Otherwise one
    pass in order, the last batch smaller. ``skip`` images are passed over first (a resumed run).

    ``part`` is ``(rank, world)`` when ``world`` processes train together: each takes every ``world``-th image
    of each training batch (from the same order, so together they train on the batches one process would) and
    every ``world``-th record of a validation pass.
    """

    def __init__(
        self, records: Records, batch_size: int, *, training: bool, shuffle: bool = True, seed=None, skip=0,
        part: tuple[int, int] = (0, 1),
    ):  # fmt: skip
        self.records, self.batch_size, self.training = records, batch_size, training
        self.shuffle, self.seed, self.skip, self.part = shuffle and training, seed, skip, part

    def order(self) -> Iterator[np.ndarray]:
        """The record indices of each batch (of this process's part), in order."""
        entries = self.records.info.entries
        rank, world = self.part
        if not self.training:
            mine = np.arange(rank, entries, world)
            for start in range(0, len(mine), self.batch_size):
                yield mine[start : start + self.batch_size]
            return
        rng = np.random.default_rng(self.seed)
        pending = np.empty(0, np.int64)
        skip = self.skip
        while True:
            epoch = rng.permutation(entries) if self.shuffle else np.arange(entries)
            if skip:
                # The order of a resumed run matches the original one from the same seed.
                taken = min(skip, entries)
                epoch, skip = epoch[taken:], skip - taken
            pending = np.concatenate([pending, epoch])
            while len(pending) >= self.batch_size:
                yield pending[: self.batch_size][rank::world]
                pending = pending[self.batch_size :]

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The batches: indexed from memory when the records are, else read ahead up to ``PREFETCH_BATCHES``
        batches on a thread (an error of the reader is raised here)."""
        if self.records.in_memory:
            for indices in self.order():
                yield self.records.batch(indices)
            return
        ahead: queue.Queue = queue.Queue(PREFETCH_BATCHES)
        stop = threading.Event()
        done = object()

        def read():
            try:
                for indices in self.order():
                    batch = self.records.batch(indices)
                    while not stop.is_set():
                        try:
                            ahead.put(batch, timeout=0.5)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
                ahead.put(done)
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
                ahead.put(exc)

        thread = threading.Thread(target=read, name="lmdb-reader", daemon=True)
        thread.start()
        try:
            while True:
                item = ahead.get()
                if item is done:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()


@dataclass
class Augmentation(AugmentationChoices):
    """The augmentation choices (see :class:`~digits.tools.training.AugmentationChoices`), the same as the
    TensorFlow tool's, computed with torch on the device."""

    @property
    def active(self) -> bool:
        """Whether any random change is asked for (whitening is not random: it applies to validation too)."""
        return self.moves_pixels or bool(self.noise or self.contrast or self.hsv)

    def apply(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Augment a batch of NCHW float images with pixel values in [0, 255]."""
        n, device = x.shape[0], x.device

        def uniform(*shape):
            return torch.rand(*shape, generator=generator, device=device)

        def normal(*shape):
            return torch.randn(*shape, generator=generator, device=device)

        if self.flip in ("fliplr", "fliplrud"):
            x = torch.where(uniform(n, 1, 1, 1) < 0.5, x.flip(3), x)
        if self.flip in ("flipud", "fliplrud"):
            x = torch.where(uniform(n, 1, 1, 1) < 0.5, x.flip(2), x)
        if self.quad_rot in self.QUARTER_TURNS:
            turns = torch.tensor(self.QUARTER_TURNS[self.quad_rot], device=device)
            chosen = turns[(uniform(n) * len(turns)).long().clamp(max=len(turns) - 1)]
            x = torch.stack([torch.rot90(image, int(k), dims=(1, 2)) for image, k in zip(x, chosen, strict=True)])
        if self.rotation or self.scale:
            x = self._rotate_and_scale(x, uniform, normal)
        if self.hsv:
            x = self._shift_hsv(x, uniform)
        if self.contrast:
            factor = 1 - self.contrast + 2 * self.contrast * uniform(n, 1, 1, 1)
            mean = x.mean(dim=(2, 3), keepdim=True)
            x = mean + (x - mean) * factor.clamp(min=0)
        if self.noise:
            x = x + normal(*x.shape) * (self.noise * 255.0)
        return x

    def _rotate_and_scale(self, x: torch.Tensor, uniform, normal) -> torch.Tensor:
        # One affine sampling grid per image: rotate by +-rotation degrees and scale about the center.
        n = x.shape[0]
        angle = (uniform(n) * 2 - 1) * (self.rotation * math.pi / 180.0)
        factor = (1 + normal(n) * self.scale).clamp(min=0.1) if self.scale else 1.0
        cos, sin = torch.cos(angle) / factor, torch.sin(angle) / factor
        zeros = torch.zeros_like(cos)
        theta = torch.stack([torch.stack([cos, -sin, zeros], 1), torch.stack([sin, cos, zeros], 1)], 1)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    def _shift_hsv(self, x: torch.Tensor, uniform) -> torch.Tensor:
        # Hue turns the colors about the gray axis (in YIQ), saturation blends with gray, value scales.
        n = x.shape[0]
        hue, saturation, value = self.hsv
        if hue:
            angle = (uniform(n) * 2 - 1) * (hue * 2 * math.pi)
            to_yiq = torch.tensor(
                [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], device=x.device
            )
            yiq = torch.einsum("ij,njhw->nihw", to_yiq, x)
            cos, sin = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
            i, q = yiq[:, 1], yiq[:, 2]
            yiq = torch.stack([yiq[:, 0], i * cos - q * sin, i * sin + q * cos], 1)
            x = torch.einsum("ij,njhw->nihw", torch.linalg.inv(to_yiq), yiq)
        if saturation:
            gray = (x * torch.tensor([0.299, 0.587, 0.114], device=x.device)[:, None, None]).sum(1, keepdim=True)
            factor = 1 - saturation + 2 * saturation * uniform(n, 1, 1, 1)
            x = gray + (x - gray) * factor
        if value:
            x = x * (1 - value + 2 * value * uniform(n, 1, 1, 1))
        return x.clamp(0.0, 255.0)


class Prepare:
    """Turns a batch of numpy arrays into device tensors ready for the network: NCHW float32 images, augmented
    (training), mean subtracted or whitened, cropped (at random for training, at the center otherwise)."""

    def __init__(
        self,
        device: torch.device,
        mean: np.ndarray | None,
        crop_size: int | None,
        augmentation: Augmentation,
        label_kind: str,
        seed: int | None,
    ):
        self.device, self.crop_size, self.augmentation, self.label_kind = device, crop_size, augmentation, label_kind
        self.mean = None
        if mean is not None:
            mean = torch.from_numpy(np.ascontiguousarray(mean))
            self.mean = (mean.permute(2, 0, 1) if mean.dim() == 3 else mean[:, None, None]).to(device)
        self.generator = torch.Generator(device=device)
        # Unseeded runs draw a seed of their own rather than reseeding torch's global generator.
        self.generator.manual_seed(seed if seed is not None else int(np.random.SeedSequence().entropy) % 2**63)

    def __call__(self, images: np.ndarray, labels: np.ndarray, training: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, y)`` on the device for one batch (see :mod:`digits.tools.torch.network` for ``y``)."""
        non_blocking = self.device.type == "cuda"
        x = torch.from_numpy(images).to(self.device, non_blocking=non_blocking)
        # Plain NCHW strides: a permuted batch keeps NHWC ones, which send convolutions down channels-last
        # kernels and make every activation after them channels-last, where a network's x.view(n, -1) fails
        # ("view size is not compatible with input tensor's size and stride"). Those kernels were measured
        # ~1.5x faster for LeNet on a 2-core CPU with torch 2.13: an opt-in is a possible speed-up.
        x = x.permute(0, 3, 1, 2).to(torch.float32, memory_format=torch.contiguous_format)
        y = torch.from_numpy(labels).to(self.device, non_blocking=non_blocking)
        if self.label_kind == "array":
            y = y.permute(0, 3, 1, 2).contiguous(memory_format=torch.contiguous_format)
        if training and self.augmentation.active:
            x = self.augmentation.apply(x, self.generator)
        if self.augmentation.whitening:
            flat = x.flatten(1)
            floor = 1.0 / math.sqrt(flat.shape[1])
            std = flat.std(dim=1, unbiased=False).clamp(min=floor)
            x = (x - flat.mean(dim=1)[:, None, None, None]) / std[:, None, None, None]
        elif self.mean is not None:
            x = x - self.mean
        if self.crop_size:
            x = self.random_crop(x) if training else center_crop(x, self.crop_size)
        return x.contiguous(), y

    def random_crop(self, x: torch.Tensor) -> torch.Tensor:
        """A ``crop_size`` square at a random place of each image."""
        n, _, height, width = x.shape
        size = self.crop_size
        top = (torch.rand(n, generator=self.generator, device=x.device) * (height - size + 1)).long()
        left = (torch.rand(n, generator=self.generator, device=x.device) * (width - size + 1)).long()
        steps = torch.arange(size, device=x.device)
        rows = (top[:, None] + steps)[:, None, :, None]
        cols = (left[:, None] + steps)[:, None, None, :]
        batch = torch.arange(n, device=x.device)[:, None, None, None]
        channels = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
        return x[batch, channels, rows, cols]


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """The ``size`` square at the centre of NCHW images (as validation crops)."""
    top, left = (x.shape[2] - size) // 2, (x.shape[3] - size) // 2
    return x[:, :, top : top + size, left : left + size]
