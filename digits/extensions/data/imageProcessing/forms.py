"""The form of an image processing dataset (DIGITS' field names)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import validators

from digits.extensions.data.folders import validate_folder
from digits.utils import forms


class DatasetForm(FlaskForm):
    """Input images and target images, paired by file name."""

    feature_folder = forms.StringField(
        "Input image folder",
        validators=[validators.DataRequired("Enter the folder of input images."), validate_folder],
        tooltip="A folder of images (sub-folders are searched too): what the network sees.",
    )
    label_folder = forms.StringField(
        "Target image folder",
        validators=[validators.DataRequired("Enter the folder of target images."), validate_folder],
        tooltip="For every input image, the image the network should output, with the same file name "
        "(the extension may differ). Inputs without a target are skipped and listed.",
    )
    folder_pct_val = forms.IntegerField(
        "% for validation",
        default=10,
        validators=[validators.Optional(), validators.NumberRange(min=0, max=99)],
        tooltip="The share of the pairs set apart for validation.",
    )
    has_val_folder = forms.BooleanField("Separate validation images", default=False)
    validation_feature_folder = forms.StringField(
        "Validation input folder",
        validators=[forms.validate_required_iff(has_val_folder=True), validate_folder],
    )
    validation_label_folder = forms.StringField(
        "Validation target folder",
        validators=[forms.validate_required_iff(has_val_folder=True), validate_folder],
    )
    channel_conversion = forms.SelectField(
        "Channels",
        choices=[("L", "Grayscale"), ("RGB", "RGB"), ("none", "As stored")],
        default="L",
        tooltip="Convert input and target images to grayscale or colour.",
    )
    resize_width = forms.IntegerField(
        "Width", validators=[validators.Optional(), validators.NumberRange(min=1, max=8192)],
        tooltip="Resize every image to this size; leave empty to keep the images' own (equal) size.",
    )  # fmt: skip
    resize_height = forms.IntegerField(
        "Height", validators=[validators.Optional(), validators.NumberRange(min=1, max=8192)]
    )
