"""Benchmark the PyTorch training program against a hand-written PyTorch loop (and the TensorFlow tool) on one network.

    .venv/bin/python bench/train_torch.py [--network lenet|resnet50] [--images N] [--image-size S] [--batch-size N]
        [--epochs N] [--repeat N] [--precision fp32|bf16|fp16] [--device cuda|cpu] [--no-tensorflow]

Generates images with ``bench/train.py``'s generators and writes them as PNG records to an LMDB (its writer),
then measures, on the same images:

- ours: ``python -m digits.tools.torch.main`` training the network from the LMDB (SGD, no validation,
  ``--precision``), timed by wall clock between its first and last progress events (start-up, and the decoding
  of a database that fits in memory, which the tool does before training, left out; metrics included);
- by hand: a plain PyTorch loop over the same images held on the device as one float32 NCHW tensor (mean
  subtracted once), the same network class, loss and weight decay (when it has one), SGD, shuffled batches,
  ``torch.autocast`` for bf16 and fp16 and a ``torch.amp.GradScaler`` for fp16 (cuDNN's benchmark on, as the
  tool has it without a seed); every epoch after the first (which warms up) is timed;
- TensorFlow (LeNet in fp32 only): ``python -m digits.tools.tensorflow.main`` with the TensorFlow LeNet, timed as
  ours (its ``TF_CPP_MIN_LOG_LEVEL`` set by the tool itself). Left out otherwise: this script never imports
  TensorFlow, so the ResNet-50 run needs none.

Networks (``--network``):

- ``lenet`` (default): ``digits/standard_networks/torch/lenet.py`` on 20,000 noisy 28x28 digits, batches of 64,
  where the work around each step weighs most;
- ``resnet50``: ``bench/resnet50.py`` (ResNet-50, our own source; torchvision is not needed) on generated
  ``--image-size`` color images (224 by default; 2,048 of them, batches of 128, 6 epochs), where compute
  dominates. ``bench/train.py``'s LMDB holds 1 GiB: about 7,000 images of 224x224, all decoded into memory by
  the tool before training.

Each measurement runs ``--repeat`` times, interleaved, and the best is kept (other work on a small machine makes
single runs vary by 2x). Prints images/s of each and the ratios (target: ours >= 0.9x the hand-written loop).
``--device`` (default: the GPU when there is one) is where both train; on ``cpu`` the tool is given no GPU.

On the GPU machine (the issue's ResNet-50 at 224x224 with mixed precision). It needs what the tool needs: torch,
numpy, Pillow, lmdb, protobuf, tensorboard. The H200 image lacks lmdb: fetch its wheel here once (into ``build/``,
which git ignores), carry ``build/wheels`` there and install it into that Python's own environment (not with
``--target``: ``progress_rate`` gives the tool a PYTHONPATH of the repository alone). About 3 minutes for both:

    .venv/bin/python -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \\
        --platform manylinux_2_17_x86_64 -d build/wheels lmdb==3.0.0                      # here, once
    python3 -m pip install -q --no-index --no-deps build/wheels/lmdb-*.whl && python3 -c "import lmdb" || exit
    for p in bf16 fp16; do PYTHONUNBUFFERED=1 python3 bench/train_torch.py --network resnet50 --image-size 224 \\
        --images 2048 --batch-size 128 --epochs 6 --repeat 2 --device cuda --precision $p; done

On this machine, end to end at a tiny size (CPU figures):

    .venv/bin/python bench/train_torch.py --network resnet50 --images 64 --image-size 64 --batch-size 16 \\
        --epochs 2 --repeat 1 --precision bf16 --device cpu
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import lmdb
import numpy as np

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
sys.path.insert(0, BENCH)

# bench/train.py's data, so both benchmarks train on it, and its timing of a training program.
from train import make_color_images, make_images, progress_rate, write_lmdb  # noqa: E402

STANDARD = os.path.join(REPO, "digits", "standard_networks")
TOOLS = {"torch": "digits.tools.torch.main", "tensorflow": "digits.tools.tensorflow.main"}
PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass(frozen=True)
class Network:
    """A network the benchmark trains, the images it trains on and its defaults for the command line."""

    name: str  # as printed
    source: str  # the PyTorch network: our tool's --network, and the class the hand-written loop builds
    tensorflow: str | None  # its TensorFlow twin, for the TensorFlow tool, when there is one
    make_images: Callable[[int, int], tuple[np.ndarray, np.ndarray]]  # (count, size) -> uint8 NHWC, labels
    fixed_size: bool  # whether the images have one size only (the digits' 28)
    defaults: dict  # the command line's defaults for this network


NETWORKS = {
    "lenet": Network(
        "LeNet", os.path.join(STANDARD, "torch", "lenet.py"), os.path.join(STANDARD, "lenet.py"),
        lambda count, size: make_images(count), True,
        {"images": 20_000, "image_size": 28, "batch_size": 64, "epochs": 2},
    ),
    "resnet50": Network(
        "ResNet-50", os.path.join(BENCH, "resnet50.py"), None, make_color_images, False,
        {"images": 2048, "image_size": 224, "batch_size": 128, "epochs": 6},
    ),
}  # fmt: skip


def tool_rate(framework: str, network: str, work: str, db: str, batch_size: int, epochs: int, flags=()) -> float:
    """Images/s of the ``framework``'s training program on the ``network`` source, from the wall-clock times of
    its progress events; ``flags`` are added to its command line."""
    job = os.path.join(work, f"{framework}-job")
    os.makedirs(job, exist_ok=True)
    command = [
        sys.executable, "-m", TOOLS[framework], "--network", network,
        "--train-db", db, "--labels", os.path.join(work, "labels.txt"),
        "--mean", os.path.join(work, "mean.npy"), "--subtract-mean", "image",
        "--epochs", str(epochs), "--batch-size", str(batch_size), "--learning-rate", "0.01",
        "--snapshot-interval", "0", *flags,
    ]  # fmt: skip
    return progress_rate(command, job, batch_size)


def by_hand(
    source: str, images: np.ndarray, labels: np.ndarray, mean: np.ndarray, batch_size: int, epochs: int,
    device: str, precision: str,
) -> float:  # fmt: skip
    """Images/s of a plain PyTorch loop training the ``source``'s network on the images held on ``device``,
    autocast to ``precision`` (fp16 with a loss scale): the epochs after the first, or the only one."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    namespace: dict = {}
    with open(source) as f:
        exec(compile(f.read(), source, "exec"), namespace)
    model = namespace["UserModel"](input_shape=list(images.shape[1:]), nclasses=10).to(device)
    model.train()
    regularization = getattr(model, "regularization", None)
    torch.backends.cudnn.benchmark = device == "cuda"
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    scaler = torch.amp.GradScaler(device) if precision == "fp16" else None
    pixels = torch.from_numpy(images).to(device).permute(0, 3, 1, 2).float()
    # Plain NCHW strides, as the tool's batches have: permuted ones (also "contiguous" with one channel) send
    # the convolutions down channels-last kernels, measured ~1.5x faster for LeNet on a CPU with torch 2.13,
    # which would compare two different computations.
    x = (pixels - torch.from_numpy(mean).to(device).permute(2, 0, 1)).clone(memory_format=torch.contiguous_format)
    y = torch.from_numpy(labels).to(device)
    timed, seconds = 0, 0.0
    for epoch in range(epochs):
        started = time.monotonic()
        order = torch.randperm(len(x), device=device)
        for start in range(0, len(x), batch_size):
            batch = order[start : start + batch_size]
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device, dtype=dtype, enabled=dtype is not None):
                loss = F.cross_entropy(model(x[batch]), y[batch])
            total = loss + regularization() if regularization else loss
            if scaler is None:
                total.backward()
                optimizer.step()
            else:
                scaler.scale(total).backward()
                scaler.step(optimizer)
                scaler.update()
        loss.item()  # waits for the device to finish the epoch
        if epoch or epochs == 1:
            timed, seconds = timed + len(x), seconds + time.monotonic() - started
    return timed / seconds


def parse_arguments() -> argparse.Namespace:
    """The command line, with the chosen network's defaults; exits with a message for a combination that cannot
    run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", choices=NETWORKS, default="lenet")
    network = NETWORKS[parser.parse_known_args()[0].network]
    parser.add_argument("--images", type=int)
    parser.add_argument("--image-size", type=int, help="height and width of the generated images")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--epochs", type=int, help="epochs of each training run")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each measurement; the best is kept")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32", help="mixed precision of both loops")
    parser.add_argument("--device", choices=("cuda", "cpu"), help="default: cuda when there is a GPU")
    parser.add_argument("--no-tensorflow", action="store_true", help="leave out the TensorFlow tool")
    parser.set_defaults(**network.defaults)
    args = parser.parse_args()
    if network.fixed_size and args.image_size != network.defaults["image_size"]:
        parser.error(f"--network {args.network} trains on {network.defaults['image_size']}-pixel digits only")
    import torch

    gpu = torch.cuda.is_available()
    args.device = args.device or ("cuda" if gpu else "cpu")
    if args.device == "cuda" and not gpu:
        parser.error("--device cuda: PyTorch sees no GPU here")
    if args.precision == "fp16" and args.device != "cuda":
        parser.error("--precision fp16 needs --device cuda (the tool refuses it on the CPU); bf16 runs on the CPU")
    args.device_name = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {os.cpu_count()} cores"
    return args


def main() -> None:
    args = parse_arguments()
    network = NETWORKS[args.network]
    if args.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # the tool, a child process, then trains on the CPU as well
    # One process, as the hand-written loop trains on one device.
    ours_flags = ["--precision", args.precision, "--processes", "1"]
    left_out = (
        "--no-tensorflow" if args.no_tensorflow
        else f"no TensorFlow {network.name} here" if network.tensorflow is None
        else "it trains in fp32 only" if args.precision != "fp32"
        else None
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-train-torch-") as work:
        images, labels = network.make_images(args.images, args.image_size)
        db = os.path.join(work, "train_db")
        try:
            write_lmdb(db, images, labels)
        except lmdb.MapFullError:
            sys.exit(f"{args.images} images of {args.image_size}x{args.image_size} overflow bench/train.py's LMDB "
                     "(1 GiB): ask for fewer")  # fmt: skip
        mean = images.mean(axis=0).astype(np.float32)
        np.save(os.path.join(work, "mean.npy"), mean)
        with open(os.path.join(work, "labels.txt"), "w") as f:
            f.write("".join(f"{i}\n" for i in range(10)))
        height, width, channels = images.shape[1:]
        where = f"{args.precision} on {args.device} ({args.device_name})"
        print(f"{network.name}: {args.images} images {height}x{width}x{channels} (PNG records), "
              f"batch size {args.batch_size}, {args.epochs} epochs, {where}")  # fmt: skip
        steps = (args.batch_size, args.epochs)
        measures = {
            "ours": lambda: tool_rate("torch", network.source, work, db, *steps, ours_flags),
            "hand": lambda: by_hand(network.source, images, labels, mean, *steps, args.device, args.precision),
        }
        if left_out is None:
            measures["tensorflow"] = lambda: tool_rate("tensorflow", network.tensorflow, work, db, *steps)
        rates: dict[str, list[float]] = {name: [] for name in measures}
        for _ in range(args.repeat):
            for name, measure in measures.items():
                rates[name].append(measure())
        best = {k: max(v) for k, v in rates.items() if v}
        runs = {k: ", ".join(f"{r:,.0f}" for r in v) for k, v in rates.items()}
        print(f"ours (LMDB, PyTorch tool):             {best['ours']:8,.0f} images/s (runs: {runs['ours']})")
        print(f"hand-written PyTorch loop (in memory): {best['hand']:8,.0f} images/s (runs: {runs['hand']})")
        if "tensorflow" in best:
            tf_rate = best["tensorflow"]
            print(f"TensorFlow tool (LMDB, tf_slim LeNet): {tf_rate:8,.0f} images/s (runs: {runs['tensorflow']})")
        else:
            print(f"TensorFlow tool: left out ({left_out})")
        print(f"ours / hand-written: {best['ours'] / best['hand']:.2f}x (target 0.9x)")
        if "tensorflow" in best:
            print(f"ours / TensorFlow tool: {best['ours'] / best['tensorflow']:.2f}x")


if __name__ == "__main__":
    main()
