import os

from flask_wtf import FlaskForm
from wtforms import validators

from digits import utils
from digits.utils import subclass


def validate_folder_path(form, field):
    if field.data and not os.path.isdir(field.data):
        raise validators.ValidationError(f"{field.data} is not a folder on the server")


def validate_file_path(form, field):
    if field.data and not os.path.isfile(field.data):
        raise validators.ValidationError(f"{field.data} is not a file on the server")


@subclass
class DatasetForm(FlaskForm):
    """
    A form used to create a DICOM segmentation dataset
    """

    image_folder = utils.forms.StringField(
        "Image folder",
        validators=[validators.DataRequired(), validate_folder_path],
        tooltip="The folder of the DICOM images (sub-folders are searched too)",
    )
    contour_folder = utils.forms.StringField(
        "Contour folder",
        validators=[validators.DataRequired(), validate_folder_path],
        tooltip="The folder of the contour text files: one 'x y' point per line",
    )
    contour_suffix = utils.forms.StringField(
        "Contour file suffix",
        default="-icontour-manual",
        tooltip="A contour file is named after its image plus this suffix and .txt",
    )
    channel_conversion = utils.forms.SelectField(
        "Channel conversion",
        choices=[("L", "Grayscale"), ("RGB", "RGB")],
        default="L",
        tooltip="Grayscale images, or the gray level copied to three channels",
    )
    pixel_scaling = utils.forms.SelectField(
        "Pixel values",
        choices=[("8bit", "Scale each image to 8 bits"), ("raw", "Keep as stored (16 bits)")],
        default="8bit",
        tooltip="8-bit images are stored as PNG; raw values keep the scanner's range",
    )
    resize_width = utils.forms.IntegerField(
        "Width", validators=[validators.Optional(), validators.NumberRange(min=1, max=4096)],
        tooltip="Resize images and masks to this size; leave empty to keep the images' own size",
    )  # fmt: skip
    resize_height = utils.forms.IntegerField(
        "Height", validators=[validators.Optional(), validators.NumberRange(min=1, max=4096)]
    )
    folder_pct_val = utils.forms.IntegerField(
        "% for validation",
        default=10,
        validators=[validators.Optional(), validators.NumberRange(min=0, max=99)],
        tooltip="The share of the outlined images set apart for validation",
    )
    class_names = utils.forms.StringField(
        "Class names", default="background, left ventricle", tooltip="Inside the contour is class 1"
    )


@subclass
class InferenceForm(FlaskForm):
    """
    A form used to perform inference with a DICOM image
    """

    test_image_file = utils.forms.StringField(
        "DICOM file", validators=[validate_file_path], tooltip="The path of a DICOM image on the server"
    )
    validation_record = utils.forms.SelectField(
        "Record from the validation set",
        choices=[("none", "- select record -")],
        default="none",
        tooltip="An outlined image of the validation set",
    )
