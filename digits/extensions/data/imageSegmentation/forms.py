"""The form of an image segmentation dataset (DIGITS' field names, plus a list of class names)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import validators

from digits.extensions.data.folders import validate_file, validate_folder
from digits.utils import forms


class DatasetForm(FlaskForm):
    """Images and label images paired by file name; class names; the colours of the classes."""

    feature_folder = forms.StringField(
        "Image folder",
        validators=[validators.DataRequired("Enter the folder of images."), validate_folder],
        tooltip="A folder of images (sub-folders are searched too).",
    )
    label_folder = forms.StringField(
        "Label folder",
        validators=[validators.DataRequired("Enter the folder of label images."), validate_folder],
        tooltip="For every image, a label image with the same file name (the extension may differ) whose "
        "pixels are class indices: a paletted or grayscale PNG, or RGB colours with a colour map file.",
    )
    folder_pct_val = forms.IntegerField(
        "% for validation",
        default=10,
        validators=[validators.Optional(), validators.NumberRange(min=0, max=99)],
        tooltip="The share of the images set apart for validation.",
    )
    has_val_folder = forms.BooleanField("Separate validation images", default=False)
    validation_feature_folder = forms.StringField(
        "Validation image folder",
        validators=[forms.validate_required_iff(has_val_folder=True), validate_folder],
    )
    validation_label_folder = forms.StringField(
        "Validation label folder",
        validators=[forms.validate_required_iff(has_val_folder=True), validate_folder],
    )
    channel_conversion = forms.SelectField(
        "Image channels",
        choices=[("RGB", "RGB"), ("L", "Grayscale"), ("none", "As stored")],
        default="RGB",
        tooltip="Convert the images (not the labels) to colour or grayscale.",
    )
    resize_width = forms.IntegerField(
        "Width", validators=[validators.Optional(), validators.NumberRange(min=1, max=8192)],
        tooltip="Resize images and labels to this size; leave empty to keep their own (equal) size.",
    )  # fmt: skip
    resize_height = forms.IntegerField(
        "Height", validators=[validators.Optional(), validators.NumberRange(min=1, max=8192)]
    )
    class_names = forms.StringField(
        "Class names",
        tooltip="Comma-separated, class 0 first (e.g. background, road, car). Or give a file below.",
    )
    class_labels_file = forms.StringField(
        "Class names file", validators=[validate_file], tooltip="One class name per line, class 0 first."
    )
    colormap_method = forms.SelectField(
        "Colours",
        choices=[("label", "From the label images' palette"), ("textfile", "From a colour map file")],
        default="label",
        tooltip="Paletted label PNGs carry the colour of each class; RGB label images need a colour map "
        "file (one 'R G B' line per class), which also maps their colours to classes.",
    )
    colormap_text_file = forms.StringField(
        "Colour map file",
        validators=[forms.validate_required_iff(colormap_method="textfile"), validate_file],
    )
