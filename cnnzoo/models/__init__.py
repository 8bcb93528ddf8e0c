"""The networks: one registry, the classifiers, the segmentation networks and their weights.

``registry`` names every network (:func:`register_model`, :func:`create_model`,
:func:`list_models`, as in timm); ``layers`` holds the blocks two families
share; ``classification`` and ``segmentation`` hold one file per family;
``weights`` renames torchvision's trained weights onto them. The families
register themselves when first listed or built.
"""

from cnnzoo.models.registry import (
    ModelEntry,
    check_input_size,
    create_model,
    get_model_entry,
    list_models,
    register_model,
)

__all__ = [
    "ModelEntry",
    "check_input_size",
    "create_model",
    "get_model_entry",
    "list_models",
    "register_model",
]
