"""The two tasks of the zoo, each described once.

A :class:`Task` holds what every layer needs to know about classification or
segmentation: how many classes a network gets when nobody says (ImageNet's
1,000; PASCAL VOC's 21), which metric picks the best checkpoint and leads
every report, and which metrics a run records. The registry, the engine, the
analysis and the command line all read these facts from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from cnnzoo.errors import CnnzooError


@dataclass(frozen=True)
class Task:
    """What the zoo knows about one task."""

    name: str  # "classification" or "segmentation"
    default_num_classes: int  # outputs of a network built without a data set
    headline: str  # the metric that picks best.pt and leads reports (higher is better)
    train_accuracy: str  # the accuracy reported for training batches in each epoch's row
    metrics: tuple[str, ...]  # what evaluation reports, in order


CLASSIFICATION = Task(
    name="classification",
    default_num_classes=1000,  # ImageNet (Russakovsky et al. 2015)
    headline="top1",
    train_accuracy="train_top1",
    metrics=("top1", "top5", "loss"),
)
SEGMENTATION = Task(
    name="segmentation",
    default_num_classes=21,  # PASCAL VOC: 20 object classes and background
    headline="miou",
    train_accuracy="train_pixel_acc",
    metrics=("miou", "pixel_acc", "mean_class_acc", "fwiou", "iou_per_class", "loss"),
)
TASKS: dict[str, Task] = {task.name: task for task in (CLASSIFICATION, SEGMENTATION)}


def get_task(name: str) -> Task:
    """The :class:`Task` called ``name``, or a :class:`CnnzooError` listing the two."""
    if name not in TASKS:
        raise CnnzooError(f"task must be one of {', '.join(TASKS)}, not {name!r}")
    return TASKS[name]
