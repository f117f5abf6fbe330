"""The two ways to upload a pretrained model: a DIGITS model archive, or its files one by one (DIGITS' names)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, MultipleFileField
from wtforms import IntegerField, StringField
from wtforms.validators import NumberRange, Optional

from digits.form_fields import Choice
from digits.imaging import RESIZE_MODES


class ArchiveForm(FlaskForm):
    """``POST /pretrained_models/upload_archive``: an archive as the Download button makes them."""

    archive = FileField("Model archive", description="A tar, tar.gz or zip made by Download, with its info.json.")
    job_name = StringField("Name", description="Empty: the name the archive carries.")


class FilesForm(FlaskForm):
    """``POST /pretrained_models/upload``: the files of a model and how its inputs are prepared."""

    weights_file = MultipleFileField(
        "Weights", description="A TensorFlow checkpoint: its .index file and its .data-* file(s)."
    )
    model_def_file = FileField("Network", description="Python source defining class UserModel(Tower).")
    labels_file = FileField("Labels", description="One class name per line, in the order of the outputs.")
    mean_file = FileField(
        "Mean image (optional)", description="A .npy array (H x W x C) or an image of the input size."
    )
    image_type = Choice("Image type", choices=[("3", "Color"), ("1", "Grayscale")], default="3")
    resize_mode = Choice("Resize mode", choices=[(m, m.replace("_", " ")) for m in RESIZE_MODES], default="squash")
    width = IntegerField("Width", default=256, validators=[NumberRange(1, 10000)])
    height = IntegerField("Height", default=256, validators=[NumberRange(1, 10000)])
    subtract_mean = Choice(
        "Subtract mean",
        choices=[("", "Image, when a mean is given"), ("none", "None"), ("image", "Image"), ("pixel", "Pixel")],
        default="",
    )
    crop_size = IntegerField("Crop size", validators=[Optional(), NumberRange(1)])
    job_name = StringField("Name", description="Empty: the network file's name.")
