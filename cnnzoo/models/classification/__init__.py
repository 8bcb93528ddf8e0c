"""Classification networks, one file per family; importing this fills the registry.

The imports follow the survey's chronology, which is the order ``cnnzoo list`` shows.
"""
# ruff: noqa: I001

from cnnzoo.models.classification import lenet  # noqa: F401
from cnnzoo.models.classification import alexnet  # noqa: F401
from cnnzoo.models.classification import vgg  # noqa: F401
from cnnzoo.models.classification import googlenet  # noqa: F401
from cnnzoo.models.classification import resnet  # noqa: F401
from cnnzoo.models.classification import resnet_cifar  # noqa: F401
from cnnzoo.models.classification import senet  # noqa: F401
from cnnzoo.models.classification import densenet  # noqa: F401
from cnnzoo.models.classification import mobilenet  # noqa: F401
from cnnzoo.models.classification import efficientnet  # noqa: F401
