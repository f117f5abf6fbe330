"""Plugin packages for tests: pip-install them into the test venv (and out again), write one from the tutorial.

Installing means a real ``pip install`` of a copy (so no build files land in the source tree), as a user
does; ``--no-build-isolation`` because a plugin's setup.py imports DIGITS for the entry point group.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
import textwrap
from contextlib import contextmanager
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SHIPPED = {
    "digits_image_gradients_data_plugin": REPO / "plugins" / "data" / "imageGradients",
    "digits_image_gradients_view_plugin": REPO / "plugins" / "view" / "imageGradients",
    "digits_dicom_segmentation_data_plugin": REPO / "plugins" / "data" / "dicomSegmentation",
}


def pip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pip", *args, "--quiet", "--disable-pip-version-check"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def install(source: Path, workdir: Path) -> None:
    """``pip install .`` in a copy of ``source``; raises with pip's output when it fails."""
    copy = workdir / f"{source.parent.name}-{source.name}"
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    done = pip("install", "--no-build-isolation", "--no-deps", "--no-index", str(copy))
    if done.returncode:
        raise RuntimeError(f"pip install {source} failed:\n{done.stdout}\n{done.stderr}")


def uninstall(name: str) -> None:
    pip("uninstall", "--yes", name)


@contextmanager
def installed(packages: dict[str, Path], workdir: Path):
    """The packages (distribution name -> source folder) installed for the duration of the block."""
    done = []
    try:
        for name, source in packages.items():
            install(source, workdir)
            done.append(name)
        yield
    finally:
        for name in done:
            uninstall(name)


# -- the plugin tutorial, followed step by step ------------------------------------------------------------
TUTORIAL_PACKAGE = "digitsDataPluginTutorial"
TUTORIAL_DIST = "digits_tutorial_data_plugin"
TUTORIAL_ID = "tutorial-gray-images"


def write_tutorial_plugin(root: Path) -> Path:
    """A data plugin written from the plugin tutorial's steps alone: the file tree of 2.1.1 (setup.py with the
    entry point, MANIFEST.in, the package's __init__.py, data.py, forms.py and the two templates).

    It reads a folder of images (the itemized entries are the file names, as the tutorial suggests), one
    channel each, and labels an image 1 when it is mostly bright; its inference form takes one image.
    """
    plugin = root / "tutorial"
    package = plugin / TUTORIAL_PACKAGE
    (package / "templates").mkdir(parents=True)
    files = {
        "setup.py": f'''
            import os
            from setuptools import setup, find_packages

            from digits.extensions.data import GROUP as DIGITS_PLUGIN_GROUP


            def read(fname):
                return open(os.path.join(os.path.dirname(__file__), fname)).read()


            setup(
                name="{TUTORIAL_DIST}",
                version="0.0.1",
                author="A Tutorial Reader",
                description=("A data ingestion plugin written from the DIGITS plugin tutorial"),
                long_description=read("README"),
                license="Apache",
                packages=find_packages(),
                entry_points={{
                    DIGITS_PLUGIN_GROUP: [
                        "class={TUTORIAL_PACKAGE}:DataIngestion",
                    ]
                }},
                include_package_data=True,
                install_requires=["numpy", "Pillow"],
            )
            ''',
        "README": "Gray images, labelled bright (1) or dark (0).\n",
        "MANIFEST.in": f"recursive-include {TUTORIAL_PACKAGE} *.html\n",
        f"{TUTORIAL_PACKAGE}/__init__.py": "from .data import DataIngestion  # noqa: F401\n",
        f"{TUTORIAL_PACKAGE}/forms.py": """
            import os

            from flask_wtf import FlaskForm
            from wtforms import IntegerField, StringField, validators


            def validate_folder_path(form, field):
                if field.data and not os.path.isdir(field.data):
                    raise validators.ValidationError("Folder does not exist or is not reachable")


            class DatasetForm(FlaskForm):
                image_folder = StringField("Image folder", validators=[validators.DataRequired(), validate_folder_path])
                folder_pct_val = IntegerField("% for validation", default=25,
                                              validators=[validators.NumberRange(min=0, max=100)])


            class InferenceForm(FlaskForm):
                test_image_file = StringField("Image file", validators=[validators.DataRequired()])
            """,
        f"{TUTORIAL_PACKAGE}/data.py": f"""
            import os

            import numpy as np
            from PIL import Image

            from digits.extensions.data.interface import DataIngestionInterface
            from digits.utils import constants, override, subclass

            from .forms import DatasetForm, InferenceForm

            DATASET_TEMPLATE = "templates/dataset_template.html"
            INFERENCE_TEMPLATE = "templates/inference_template.html"


            @subclass
            class DataIngestion(DataIngestionInterface):
                def __init__(self, is_inference_db=False, **kwargs):
                    super().__init__(**kwargs)
                    self.userdata["is_inference_db"] = is_inference_db
                    self.userdata["class_labels"] = ["dark", "bright"]

                @override
                def encode_entry(self, entry):
                    image = np.array(Image.open(entry).convert("L"))
                    label = np.array([int(image.mean() > 127)])
                    return image[np.newaxis, ...], label

                @staticmethod
                @override
                def get_category():
                    return "Tutorial"

                @staticmethod
                @override
                def get_id():
                    return "{TUTORIAL_ID}"

                @staticmethod
                @override
                def get_dataset_form():
                    return DatasetForm()

                @staticmethod
                @override
                def get_dataset_template(form):
                    extension_dir = os.path.dirname(os.path.abspath(__file__))
                    template = open(os.path.join(extension_dir, DATASET_TEMPLATE), "r").read()
                    context = {{"form": form}}
                    return (template, context)

                @override
                def get_inference_form(self):
                    return InferenceForm()

                @staticmethod
                @override
                def get_inference_template(form):
                    extension_dir = os.path.dirname(os.path.abspath(__file__))
                    template = open(os.path.join(extension_dir, INFERENCE_TEMPLATE), "r").read()
                    return (template, {{"form": form}})

                @staticmethod
                @override
                def get_title():
                    return "Gray Images"

                @override
                def itemize_entries(self, stage):
                    if self.userdata["is_inference_db"]:
                        return [self.test_image_file] if stage == constants.TEST_DB else []
                    names = sorted(os.listdir(self.image_folder))
                    n_val = len(names) * self.folder_pct_val // 100
                    paths = [os.path.join(self.image_folder, name) for name in names]
                    if stage == constants.TRAIN_DB:
                        return paths[n_val:]
                    if stage == constants.VAL_DB:
                        return paths[:n_val]
                    return []
            """,
        f"{TUTORIAL_PACKAGE}/templates/dataset_template.html": """
            {% from "helper.html" import print_flashes %}
            {% from "helper.html" import print_errors %}
            {% from "helper.html" import mark_errors %}

            {{ print_flashes() }}
            <div class="form-group{{ mark_errors([form.image_folder]) }}">
                {{ form.image_folder.label }}
                {{ form.image_folder(class='form-control') }}
            </div>
            <div class="form-group{{ mark_errors([form.folder_pct_val]) }}">
                {{ form.folder_pct_val.label }}
                {{ form.folder_pct_val(class='form-control') }}
            </div>
            """,
        f"{TUTORIAL_PACKAGE}/templates/inference_template.html": """
            {% from "helper.html" import print_errors %}
            {{ print_errors(form) }}
            <div class="form-group">
                {{ form.test_image_file.label }}
                {{ form.test_image_file(class='form-control') }}
            </div>
            """,
    }
    for name, text in files.items():
        (plugin / name).write_text(textwrap.dedent(text).lstrip())
    return plugin


def write_gray_images(folder: Path, count: int = 20, size: int = 12) -> Path:
    """``count`` gray PNGs, alternately dark and bright."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for i in range(count):
        base = 200 if i % 2 else 40
        pixels = np.clip(base + rng.integers(-30, 30, (size, size)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"image{i:03d}.png")
    return folder


# -- DICOM files --------------------------------------------------------------------------------------------
def write_dicom(path: Path, pixels: np.ndarray) -> Path:
    """An uncompressed single-frame MR DICOM file of 16-bit ``pixels``, written with pydicom."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "MR"
    ds.PatientName = "Test^Heart"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def circle(center: tuple[float, float], radius: float, points: int = 24) -> list[tuple[float, float]]:
    return [
        (
            center[0] + radius * math.cos(2 * math.pi * k / points),
            center[1] + radius * math.sin(2 * math.pi * k / points),
        )
        for k in range(points)
    ]


def write_contour(path: Path, points: list[tuple[float, float]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{x:.2f} {y:.2f}\n" for x, y in points))
    return path


def write_dicom_study(root: Path, count: int = 12, size: int = 32) -> dict:
    """A Sunnybrook-like study: ``count`` DICOM images of a bright disk with their contour files, plus DICOM
    files pydicom ships (uncompressed, JPEG 2000 which Pillow decodes, JPEG-LS which no installed codec
    decodes, one without pixels), a file that is not DICOM, and a contour without image. Returns the
    folders and what should happen."""
    from pydicom.data import get_testdata_file

    images, contours = root / "images", root / "contours" / "expert"
    rng = np.random.default_rng(2)
    for i in range(count):
        case = images / f"case{i % 3}"
        case.mkdir(parents=True, exist_ok=True)
        center = (size / 2 + rng.uniform(-4, 4), size / 2 + rng.uniform(-4, 4))
        radius = rng.uniform(5, 9)
        yy, xx = np.mgrid[:size, :size]
        disk = (xx - center[0]) ** 2 + (yy - center[1]) ** 2 <= radius**2
        pixels = 300 + 2500 * disk + rng.integers(0, 200, (size, size))
        write_dicom(case / f"IM-0001-{i:04d}.dcm", pixels)
        write_contour(contours / f"IM-0001-{i:04d}-icontour-manual.txt", circle(center, radius))
    shipped = {
        "MR_small": "MR_small.dcm",  # 64x64, readable: resized to the others' size
        "JPEG2000": "MR_small_jp2klossless.dcm",  # JPEG 2000: Pillow's codec decodes it
        "JPEGLS": "MR_small_jpeg_ls_lossless.dcm",  # JPEG-LS: no codec installed here
        "rtplan": "rtplan.dcm",  # DICOM, but no image
    }
    for stem, name in shipped.items():
        shutil.copy(get_testdata_file(name), images / f"{stem}.dcm")
        write_contour(contours / f"{stem}-icontour-manual.txt", circle((10, 10), 5))
    (images / "notes.dcm").write_text("not a DICOM file at all\n")
    write_contour(contours / "notes-icontour-manual.txt", circle((10, 10), 5))
    write_contour(contours / "IM-9999-0001-icontour-manual.txt", circle((10, 10), 5))
    return {
        "images": images,
        "contours": root / "contours",
        "usable": count + 2,
        "skipped": {"JPEGLS": "cannot be decoded", "rtplan": "without an image",
                    "notes": "not a DICOM file", "IM-9999-0001": "no image of that name"},
    }  # fmt: skip
