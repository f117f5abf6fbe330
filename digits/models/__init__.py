"""Model kinds: each is a type with its form, the datasets it trains on and its standard networks.

``create(store, kind, data, owner, pools)`` makes the model jobs of a form (one per point of a sweep);
``KINDS`` are the kinds this server trains.
"""

from digits.models.generic import GenericImageModel
from digits.models.image_classification import ImageClassificationModel
from digits.models.kinds import ModelKind, create, pretrained_models, previous_models

KINDS: dict[str, ModelKind] = {kind.id: kind for kind in (ImageClassificationModel(), GenericImageModel())}

__all__ = ["KINDS", "ModelKind", "create", "pretrained_models", "previous_models"]
