"""The forms of the image gradients plugin: how many images of which size, and what to infer on."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import validators

from digits.utils import forms, subclass
from digits.utils.forms import validate_required_iff

SLOPE_RANGE = validators.NumberRange(min=-0.5, max=0.5, message="A slope is between -0.5 and 0.5.")


@subclass
class DatasetForm(FlaskForm):
    """The size of each stage and of the images."""

    train_image_count = forms.IntegerField(
        "Training images",
        default=1000,
        validators=[validators.DataRequired("Enter how many training images to make."), validators.NumberRange(min=1)],
        tooltip="How many gradient images to make for training, each with random slopes.",
    )
    val_image_count = forms.IntegerField(
        "Validation images",
        default=250,
        validators=[validators.Optional(), validators.NumberRange(min=0)],
        tooltip="Images set apart to measure the model while it trains; 0 for none.",
    )
    test_image_count = forms.IntegerField(
        "Test images",
        default=0,
        validators=[validators.Optional(), validators.NumberRange(min=0)],
        tooltip="Images for a test database, not used in training; 0 for none.",
    )
    image_width = forms.IntegerField(
        "Image Width",
        default=32,
        validators=[validators.DataRequired("Enter the width in pixels."), validators.NumberRange(min=1, max=4096)],
    )
    image_height = forms.IntegerField(
        "Image Height",
        default=32,
        validators=[validators.DataRequired("Enter the height in pixels."), validators.NumberRange(min=1, max=4096)],
    )


@subclass
class InferenceForm(FlaskForm):
    """One gradient given by its slopes, or a number of random ones."""

    gradient_x = forms.FloatField(
        "x slope",
        validators=[validate_required_iff(test_image_count=None), SLOPE_RANGE],
        tooltip="From -0.5 (bright on the left) to 0.5 (bright on the right).",
    )
    gradient_y = forms.FloatField(
        "y slope",
        validators=[validate_required_iff(test_image_count=None), SLOPE_RANGE],
        tooltip="From -0.5 (bright at the top) to 0.5 (bright at the bottom).",
    )
    test_image_count = forms.IntegerField(
        "Random images",
        validators=[validators.Optional(), validators.NumberRange(min=1)],
        tooltip="Instead of one gradient: this many images with random slopes.",
    )
