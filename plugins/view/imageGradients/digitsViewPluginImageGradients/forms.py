from flask_wtf import FlaskForm
from wtforms import validators

from digits import utils
from digits.utils import subclass


@subclass
class ConfigForm(FlaskForm):
    """
    A form used to configure gradient visualization
    """

    arrow_color = utils.forms.SelectField(
        "Arrow color",
        choices=[("red", "Red"), ("green", "Green"), ("blue", "Blue")],
        default="red",
    )
    arrow_size = utils.forms.IntegerField(
        "Arrow size (%)",
        validators=[validators.DataRequired(), validators.NumberRange(min=1)],
        default=80,
        tooltip="Expressed as percentage of input image",
    )
