"""Generic image models (DIGITS' New Model > Images > Other): networks trained on a generic dataset.

The dataset's records carry any label a data extension makes (a value vector for regression, a label
array for segmentation or image-to-image networks), so the network defines what its output means. The
form is the image classification one; its standard networks are the segmentation FCN and the DetectNet
detector (for datasets of the ``image-object-detection`` extension, see ``docs/detection.md``). When the
dataset's extension names classes (``class_labels`` in its user data), the model directory gets a
``labels.txt`` and ``self.nclasses`` is their count.
"""

from __future__ import annotations

from pathlib import Path

from digits.datasets import generic as generic_datasets
from digits.form_fields import RadioChoice
from digits.jobs import Job
from digits.models.image_classification import SEGMENTATION_NETWORKS, ImageClassificationModelForm
from digits.models.kinds import ModelKind

KIND = "image-generic"
TITLE = "Generic Image Model"
DATASET_KINDS = (generic_datasets.KIND, generic_datasets.PREBUILT_KIND)


class GenericModelForm(ImageClassificationModelForm):
    """The model form for generic datasets (same field names: DIGITS' scripts post the same fields)."""

    standard_networks = RadioChoice(
        "Standard networks", choices=[(n, t) for n, t, _ in SEGMENTATION_NETWORKS], default="fcn"
    )


class GenericImageModel(ModelKind):
    """A network whose output the network defines (regression, segmentation, ...), on a generic dataset."""

    id = KIND
    path = "images/generic"
    title = TITLE
    form = GenericModelForm
    dataset_kinds = DATASET_KINDS
    standard_networks = SEGMENTATION_NETWORKS

    def prepare(self, directory: Path, dataset: Job) -> list[str]:
        """The dataset's class names, when its extension names them, as the model's ``labels.txt``; a
        detection dataset's model is trained with ``--detection`` (validation reports mAP)."""
        info = generic_datasets.dataset_info(dataset)
        args = ["--detection"] if info.extension_id == generic_datasets.DETECTION_EXTENSION else []
        if not info.labels:
            return args
        (directory / "labels.txt").write_text("".join(f"{name}\n" for name in info.labels))
        return [*args, "--labels", "labels.txt"]
