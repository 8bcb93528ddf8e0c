"""Where each data set is read: one module per source or family of sources.

Importing this package registers every source with
:func:`~cnnzoo.data.base.register_dataset`, under the name ``--data`` takes.

Classification:

* :mod:`~cnnzoo.data.sources.digits`: ``digits``, ``mnist5k`` (offline).
* :mod:`~cnnzoo.data.sources.torchvision_sets`: ``mnist``, ``fashion-mnist``,
  ``cifar10``, ``cifar100``, ``svhn``.
* :mod:`~cnnzoo.data.sources.class_folders`: ``folder:PATH``.

Segmentation:

* :mod:`~cnnzoo.data.sources.shapes`: ``shapes`` (synthetic, offline).
* :mod:`~cnnzoo.data.sources.mask_folders`: ``folder:IMAGES,MASKS`` (``seg-folder``).
* :mod:`~cnnzoo.data.sources.camvid`: ``camvid:PATH``.
* :mod:`~cnnzoo.data.sources.voc`: ``voc``.
* :mod:`~cnnzoo.data.sources.isbi2012`: ``isbi2012:PATH``.
"""

# The order of registration is the order `cnnzoo datasets` and `--help` list them in.
# isort: off
from cnnzoo.data.sources import digits, torchvision_sets, class_folders
from cnnzoo.data.sources import shapes, mask_folders, camvid, voc, isbi2012

# isort: on

__all__ = [
    "camvid",
    "class_folders",
    "digits",
    "isbi2012",
    "mask_folders",
    "shapes",
    "torchvision_sets",
    "voc",
]
