"""The form of an object detection dataset (DIGITS' field names of ``image-object-detection``)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import validators

from digits.extensions.data.folders import validate_folder
from digits.utils import forms

SIZE = [validators.Optional(), validators.NumberRange(min=1, max=8192)]


class DatasetForm(FlaskForm):
    """Images and KITTI label files paired by name, for training and validation; how images are stored."""

    train_image_folder = forms.StringField(
        "Training image folder",
        validators=[validators.DataRequired("Enter the folder of training images."), validate_folder],
        tooltip="A folder of images (sub-folders are searched too).",
    )
    train_label_folder = forms.StringField(
        "Training label folder",
        validators=[validators.DataRequired("Enter the folder of training labels."), validate_folder],
        tooltip="For every image, a KITTI label file with the same name and .txt: one object a line, "
        "'class truncation occlusion alpha left top right bottom ...' in the image's pixels.",
    )
    val_image_folder = forms.StringField(
        "Validation image folder",
        validators=[forms.validate_required_if_set("val_label_folder"), validate_folder],
        tooltip="Leave empty to hold out a share of the training images instead.",
    )
    val_label_folder = forms.StringField(
        "Validation label folder", validators=[forms.validate_required_if_set("val_image_folder"), validate_folder]
    )
    folder_pct_val = forms.IntegerField(
        "% for validation",
        default=10,
        validators=[validators.Optional(), validators.NumberRange(min=0, max=99)],
        tooltip="Without a validation folder: the share of the training images held out for validation.",
    )
    resize_image_width = forms.IntegerField(
        "Resize width", validators=SIZE, tooltip="Resize images (after padding) and their boxes to this size."
    )
    resize_image_height = forms.IntegerField("Resize height", validators=SIZE)
    padding_image_width = forms.IntegerField(
        "Padding width",
        validators=SIZE,
        tooltip="Pad images at the right and bottom to this size (images larger are skipped and listed).",
    )
    padding_image_height = forms.IntegerField("Padding height", validators=SIZE)
    channel_conversion = forms.SelectField(
        "Image channels",
        choices=[("RGB", "RGB"), ("L", "Grayscale")],
        default="RGB",
    )
    val_min_box_size = forms.IntegerField(
        "Minimum box size (validation)",
        default=0,
        validators=[validators.Optional(), validators.NumberRange(min=0, max=8192)],
        tooltip="Validation boxes lower than this (in stored pixels) are ignored in scoring.",
    )
    custom_classes = forms.StringField(
        "Custom classes",
        tooltip="The classes to detect, comma-separated (e.g. car, pedestrian); other classes in the labels "
        "become 'dontcare' regions, ignored in training and scoring. Empty: every class of the training labels.",
    )

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        for kind in ("resize", "padding"):
            width, height = self[f"{kind}_image_width"], self[f"{kind}_image_height"]
            if bool(width.data) != bool(height.data):
                (height if width.data else width).errors.append(f"Give both the {kind} width and height.")
                ok = False
        return ok
