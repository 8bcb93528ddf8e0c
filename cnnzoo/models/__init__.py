"""Classification networks, one file per family; importing this fills the registry.

The imports follow the survey's chronology, which is the order ``cnnzoo list`` shows.
"""
# ruff: noqa: I001

from cnnzoo.models import lenet  # noqa: F401
from cnnzoo.models import alexnet  # noqa: F401
from cnnzoo.models import vgg  # noqa: F401
from cnnzoo.models import googlenet  # noqa: F401
from cnnzoo.models import resnet  # noqa: F401
from cnnzoo.models import resnet_cifar  # noqa: F401
from cnnzoo.models import senet  # noqa: F401
from cnnzoo.models import densenet  # noqa: F401
from cnnzoo.models import mobilenet  # noqa: F401
from cnnzoo.models import efficientnet  # noqa: F401
