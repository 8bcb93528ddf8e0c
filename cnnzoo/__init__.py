"""cnnzoo: the landmark convolutional networks, faithful, trainable and open to inspection."""

from cnnzoo.errors import CnnzooError
from cnnzoo.registry import create_model, get_model_entry, list_models, register_model

__version__ = "0.1.0"
__all__ = [
    "CnnzooError",
    "create_model",
    "get_model_entry",
    "list_models",
    "register_model",
    "__version__",
]
