"""Dataset kinds: each is a type with its forms, the tasks that build it and how its results are described.

``create(store, kind, data, owner)`` makes a dataset job of any kind from form data; ``KINDS`` are the
kinds this server makes from its own forms, ``kind_of(job)`` the kind of an existing dataset.
"""

from digits.datasets.generic import ExtensionDataset, PrebuiltDataset
from digits.datasets.image_classification import ImageClassificationDataset
from digits.datasets.kinds import DatasetKind, create
from digits.jobs import Job

KINDS: dict[str, DatasetKind] = {kind.id: kind for kind in (ImageClassificationDataset(), PrebuiltDataset())}
# Datasets made by data extensions: the kind describes them; creating one needs its extension.
DESCRIBED_KINDS: dict[str, DatasetKind] = {**KINDS, ExtensionDataset.id: ExtensionDataset()}


def kind_of(job: Job) -> DatasetKind:
    """The kind of an existing dataset job (image classification for jobs older than kinds)."""
    return DESCRIBED_KINDS.get(job.kind, KINDS[ImageClassificationDataset.id])


__all__ = ["KINDS", "DatasetKind", "ExtensionDataset", "create", "kind_of"]
