"""Fine-tuning: a run whose network starts from trained weights instead of from scratch.

Two starts, as in torchvision's reference scripts (``--weights``) and timm's
``train.py`` (``--pretrained``, ``--initial-checkpoint``):

* ``--pretrained torchvision``: torchvision's ImageNet weights
  (:mod:`cnnzoo.models.weights.hub`); a head for other classes starts fresh. The
  weights expect the images they were trained on, so their mean, std and
  crop become the run's preprocessing unless the configuration sets its own
  (:func:`cnnzoo.runs.plan.pretrained_defaults`), and are stored in the
  checkpoint like any run's (nothing that loads the run needs the weight file
  again);
* ``--init-from RUN``: the weights of any cnnzoo checkpoint, for example a
  network trained on another data set. Tensors whose names and shapes match
  are copied; the others (a 10-class head from a 1,000-class checkpoint)
  start fresh and are named.

Either way the tensors left fresh form the *head*. ``--freeze-backbone``
trains the head alone and ``--head-lr-scale`` gives it its own learning rate
(:mod:`cnnzoo.train.optim`).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from torch import nn

from cnnzoo.errors import CnnzooError
from cnnzoo.runs.checkpoint import Checkpoint
from cnnzoo.runs.directory import checkpoint_path
from cnnzoo.train.optim import head_parameters


@dataclass(frozen=True)
class StartingWeights:
    """Where a network's weights came from, and which of its tensors start fresh."""

    source: str  # the file read, and what it held
    loaded: tuple[str, ...]  # tensors that now hold the source's values
    reset: tuple[str, ...]  # tensors left at their initialisation: the head
    # why a tensor the source also holds was left fresh, by name: "[1000, 512] in the file"
    reasons: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """One line for the terminal: how many tensors were loaded, and which start fresh."""
        total = len(self.loaded) + len(self.reset)
        fresh = [
            f"{name} ({self.reasons[name]})" if name in self.reasons else name
            for name in self.reset
        ]
        shown = f"fresh: {', '.join(fresh)}" if fresh else "none fresh"
        return f"weights from {self.source}: {len(self.loaded)} of {total} tensors loaded; {shown}"


def pretrained_start(model: nn.Module) -> StartingWeights:
    """What ``create_model(..., pretrained=...)`` loaded into ``model``."""
    report = model.pretrained_report
    return StartingWeights(
        f"{report.file.name} (torchvision's {report.architecture})", report.loaded, report.reset
    )


def init_from_checkpoint(model: nn.Module, location: str, task: str) -> StartingWeights:
    """Copy the tensors of the checkpoint at ``location`` that fit ``model`` by name and shape.

    A checkpoint of another task, or one with no tensor in common with the
    network (another architecture), is refused; tensors whose shape differs
    are left fresh and named.
    """
    path = checkpoint_path(location)
    checkpoint = Checkpoint.load(path)
    if checkpoint.task != task:
        raise CnnzooError(
            f"--init-from {path} holds a {checkpoint.task} network "
            f"({checkpoint.model_name}); this run trains a {task} network: start from a "
            f"{task} checkpoint"
        )
    own, found = model.state_dict(), checkpoint.weights
    fitting = {k: v for k, v in found.items() if k in own and v.shape == own[k].shape}
    # Batch norms' step counters are scalars of the same name in many networks: no evidence.
    if all(k.endswith("num_batches_tracked") for k in fitting):
        raise CnnzooError(
            f"--init-from {path} holds {checkpoint.model_name!r}, which shares no tensor with "
            "this network: it is another architecture; start from a checkpoint of the same one"
        )
    model.load_state_dict(fitting, strict=False)
    reasons = {
        k: f"{list(found[k].shape)} in the file, {list(own[k].shape)} here"
        for k in own
        if k in found and k not in fitting
    }
    reset = tuple(k for k in own if k not in fitting)
    return StartingWeights(f"{path} ({checkpoint.model_name})", tuple(fitting), reset, reasons)


def head_of(model: nn.Module, start: StartingWeights) -> tuple[str, ...]:
    """The head trained on its own terms: the fresh tensors, else the network's own head.

    A checkpoint of the same classes fills every tensor; fine-tuning it with
    ``--freeze-backbone`` then trains the classifier its network names as its
    head (``head_modules``, the layers ``features_only`` drops).
    """
    if start.reset:
        return start.reset
    prefixes = tuple(f"{name}." for name in getattr(model, "head_modules", ()))
    return tuple(name for name in model.state_dict() if prefixes and name.startswith(prefixes))


def freeze_backbone(model: nn.Module, head: Collection[str]) -> list[nn.Module]:
    """Train the head alone; return the batch-norm layers whose statistics must stay fixed.

    Every parameter outside ``head`` stops requiring gradients, and so is
    left out of the optimiser. A frozen batch norm also keeps its running
    statistics: they belong to the weights around them, and updating them from
    the new data would change what the frozen layers compute while nothing
    else there may adapt (torchvision's detection models freeze them the same
    way, ``FrozenBatchNorm2d``). The caller holds those layers in evaluation
    mode whenever the network trains.
    """
    trainable = {id(p) for p in head_parameters(model, head, "--freeze-backbone")}
    for parameter in model.parameters():
        parameter.requires_grad_(id(parameter) in trainable)
    return [
        module
        for module in model.modules()
        if isinstance(module, nn.modules.batchnorm._BatchNorm)
        and not any(p.requires_grad for p in module.parameters(recurse=False))
    ]
