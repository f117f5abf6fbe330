import math
import os
import random

import numpy as np
import PIL.Image
import PIL.ImageDraw
import pydicom
from pydicom.errors import InvalidDicomError

from digits.extensions.data.interface import DataIngestionInterface, SkipEntry
from digits.utils import constants, override, subclass
from digits.utils.constants import COLOR_PALETTE_ATTRIBUTE

from .forms import DatasetForm, InferenceForm

DATASET_TEMPLATE = "templates/dataset_template.html"
INFERENCE_TEMPLATE = "templates/inference_template.html"
# class 0 black (background), class 1 red (inside the contour)
PALETTE = [0, 0, 0, 230, 25, 75] + [0] * (254 * 3)


def find_files(folder):
    """Every file under ``folder``, keyed by its name without extension (the first one found wins)."""
    files = {}
    for base, dirs, names in os.walk(folder):
        dirs.sort()
        for name in sorted(names):
            if not name.startswith("."):
                files.setdefault(os.path.splitext(name)[0], os.path.join(base, name))
    return files


def load_image(path):
    """The pixels of a DICOM file as a 2-D array; SkipEntry when it is no DICOM image we can decode."""
    try:
        dataset = pydicom.dcmread(path)
    except InvalidDicomError:
        raise SkipEntry(f"{path} is not a DICOM file") from None
    except Exception as exc:
        raise SkipEntry(f"{path} cannot be read as DICOM: {type(exc).__name__}: {exc}") from None
    if "PixelData" not in dataset:
        raise SkipEntry(f"{path} is a DICOM file without an image ({dataset.get('Modality', 'no modality')})")
    try:
        pixels = dataset.pixel_array
    except Exception as exc:
        syntax = dataset.file_meta.get("TransferSyntaxUID") if hasattr(dataset, "file_meta") else None
        name = syntax.name if syntax is not None else "an unknown transfer syntax"
        raise SkipEntry(
            f"{path}: its pixels are encoded with {name} and cannot be decoded here "
            f"(install a codec plugin for pydicom): {type(exc).__name__}: {str(exc).splitlines()[0]}"
        ) from None
    if pixels.ndim == 3 and pixels.shape[-1] in (3, 4) and dataset.get("SamplesPerPixel", 1) > 1:
        pixels = np.asarray(PIL.Image.fromarray(pixels[..., :3].astype("uint8")).convert("L"))
    if pixels.ndim != 2:
        raise SkipEntry(f"{path} holds {pixels.shape[0]} frames; only single images are used")
    return pixels


def load_contour(path, shape):
    """The mask (uint8, 1 inside) of a contour file of 'x y' points, for an image of ``shape``."""
    points = np.loadtxt(path, ndmin=2)
    if points.shape[1] < 2 or len(points) < 3:
        raise SkipEntry(f"{path} is not a contour: expected lines of 'x y', at least three of them")
    mask = PIL.Image.new("L", (shape[1], shape[0]), 0)
    PIL.ImageDraw.Draw(mask).polygon([(float(x), float(y)) for x, y in points[:, :2]], fill=1, outline=1)
    return np.asarray(mask, dtype=np.uint8)


@subclass
class DataIngestion(DataIngestionInterface):
    """
    A data ingestion extension for DICOM images outlined by contour files
    """

    def __init__(self, is_inference_db=False, **kwargs):
        super().__init__(is_inference_db, **kwargs)
        self.userdata["is_inference_db"] = is_inference_db
        self.userdata.setdefault("seed", random.randint(0, 1 << 30))
        names = [n.strip() for n in (self.userdata.get("class_names") or "").split(",") if n.strip()]
        self.userdata["class_labels"] = names or ["background", "foreground"]
        self.userdata[COLOR_PALETTE_ATTRIBUTE] = PALETTE
        width, height = self.userdata.get("resize_width"), self.userdata.get("resize_height")
        self.size = (int(width), int(height)) if width and height else None

    def pairs(self):
        """(contour file, DICOM file or None) for every contour file, shuffled with the dataset's seed."""
        images = find_files(self.image_folder)
        suffix = self.userdata.get("contour_suffix") or ""
        pairs = []
        for stem, contour in sorted(find_files(self.contour_folder).items()):
            if not contour.endswith(".txt"):
                continue
            image_stem = stem[: -len(suffix)] if suffix and stem.endswith(suffix) else stem
            pairs.append((contour, images.get(image_stem)))
        random.Random(self.userdata["seed"]).shuffle(pairs)
        return pairs

    def to_feature(self, pixels):
        if self.userdata.get("pixel_scaling", "8bit") == "8bit":
            pixels = pixels.astype(np.float64)
            low, high = pixels.min(), pixels.max()
            pixels = ((pixels - low) * (255.0 / ((high - low) or 1.0))).astype(np.uint8)
        elif pixels.dtype not in (np.uint16, np.int16, np.uint8):
            pixels = pixels.astype(np.int32)
        if self.size and pixels.shape[::-1] != self.size:
            mode = "L" if pixels.dtype == np.uint8 else "F"
            resized = PIL.Image.fromarray(pixels.astype(np.float32) if mode == "F" else pixels, mode=mode)
            pixels = np.asarray(resized.resize(self.size, PIL.Image.Resampling.BILINEAR)).astype(pixels.dtype)
        if self.userdata.get("channel_conversion", "L") == "RGB":
            return np.stack([pixels] * 3)
        return pixels[np.newaxis, ...]

    def to_label(self, mask):
        if self.size and mask.shape[::-1] != self.size:
            mask = np.asarray(PIL.Image.fromarray(mask).resize(self.size, PIL.Image.Resampling.NEAREST))
        return mask[np.newaxis, ...]

    @override
    def encode_entry(self, entry):
        contour, image = entry
        if contour is None:
            # inference on a single image: no ground truth
            pixels = load_image(image)
            return self.to_feature(pixels), self.to_label(np.zeros(pixels.shape, np.uint8))
        if image is None:
            raise SkipEntry(f"{contour}: no image of that name in {self.image_folder}")
        pixels = load_image(image)
        return self.to_feature(pixels), self.to_label(load_contour(contour, pixels.shape))

    @staticmethod
    @override
    def get_category():
        return "Images"

    @staticmethod
    @override
    def get_id():
        return "dicom-segmentation"

    @staticmethod
    @override
    def get_dataset_form():
        return DatasetForm()

    @staticmethod
    @override
    def get_dataset_template(form):
        extension_dir = os.path.dirname(os.path.abspath(__file__))
        with open(os.path.join(extension_dir, DATASET_TEMPLATE)) as f:
            template = f.read()
        return template, {"form": form}

    @override
    def get_inference_form(self):
        form = InferenceForm()
        for index, contour in enumerate(self.userdata.get("val_contours", [])):
            form.validation_record.choices.append((str(index), os.path.basename(contour)))
        return form

    @staticmethod
    @override
    def get_inference_template(form):
        extension_dir = os.path.dirname(os.path.abspath(__file__))
        with open(os.path.join(extension_dir, INFERENCE_TEMPLATE)) as f:
            template = f.read()
        return template, {"form": form}

    @staticmethod
    @override
    def get_title():
        return "DICOM Segmentation"

    @override
    def itemize_entries(self, stage):
        if self.userdata["is_inference_db"]:
            if stage != constants.TEST_DB:
                return []
            record = self.userdata.get("validation_record") or "none"
            if record != "none":
                if self.userdata.get("test_image_file"):
                    raise ValueError("Give either an image file or a record of the validation set, not both")
                contour = self.userdata["val_contours"][int(record)]
                pairs = dict(self.pairs())
                return [(contour, pairs.get(contour))]
            return [(None, self.userdata["test_image_file"])]
        pairs = self.pairs()
        n_val = int(math.floor(len(pairs) * int(self.userdata.get("folder_pct_val") or 0) / 100))
        # kept with the dataset, for the inference form's list of validation records
        self.userdata["val_contours"] = [contour for contour, _ in pairs[:n_val]]
        if stage == constants.TRAIN_DB:
            return pairs[n_val:]
        if stage == constants.VAL_DB:
            return pairs[:n_val]
        return []
