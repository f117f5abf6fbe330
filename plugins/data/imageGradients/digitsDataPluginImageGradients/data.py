import os

import numpy as np

from digits.extensions.data.interface import DataIngestionInterface
from digits.utils import constants, override, subclass

from .forms import DatasetForm, InferenceForm

TEMPLATE = "templates/template.html"
INFERENCE_TEMPLATE = "templates/inference_template.html"


@subclass
class DataIngestion(DataIngestionInterface):
    """
    A data ingestion extension for an image gradient dataset
    """

    def __init__(self, is_inference_db=False, **kwargs):
        super().__init__(**kwargs)
        self.userdata["is_inference_db"] = is_inference_db
        # used to compute the gradients
        self.yy, self.xx = np.mgrid[: self.image_height, : self.image_width].astype("float")

    @override
    def encode_entry(self, entry):
        xslope, yslope = entry
        label = np.array([xslope, yslope])
        a = xslope * 255 / self.image_width
        b = yslope * 255 / self.image_height
        image = a * (self.xx - self.image_width / 2) + b * (self.yy - self.image_height / 2) + 127.5
        image = image.astype("uint8")
        # 3-D arrays: 1 x height x width for the image, 1 x 1 x 2 for the label
        return image[np.newaxis, ...], label[np.newaxis, np.newaxis, ...]

    @staticmethod
    @override
    def get_category():
        return "Images"

    @staticmethod
    @override
    def get_id():
        return "image-gradients"

    @staticmethod
    @override
    def get_dataset_form():
        return DatasetForm()

    @staticmethod
    @override
    def get_dataset_template(form):
        extension_dir = os.path.dirname(os.path.abspath(__file__))
        with open(os.path.join(extension_dir, TEMPLATE)) as f:
            template = f.read()
        return template, {"form": form}

    @override
    def get_inference_form(self):
        return InferenceForm()

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
        return "Gradients"

    @override
    def itemize_entries(self, stage):
        count = 0
        if self.userdata["is_inference_db"]:
            if stage == constants.TEST_DB:
                if self.userdata.get("test_image_count"):
                    count = self.test_image_count
                else:
                    return [(self.gradient_x, self.gradient_y)]
        elif stage == constants.TRAIN_DB:
            count = self.train_image_count
        elif stage == constants.VAL_DB:
            count = self.val_image_count or 0
        elif stage == constants.TEST_DB:
            count = self.test_image_count or 0
        return [np.random.random_sample(2) - 0.5 for _ in range(count)] if count > 0 else []
