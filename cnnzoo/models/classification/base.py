"""The interface every classifier shares, and the feature extractor built on it.

Like timm's models, a cnnzoo classifier is split into a *feature* part that
turns an image into a stack of ever coarser feature maps (the *stages*) and a
*head* that turns the last map into class scores. ``feature_info`` lists each
stage's channels and stride, so a segmentation network can use any classifier
as its encoder without knowing its attribute names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from cnnzoo.errors import CnnzooError
from cnnzoo.models.registry import check_input_size


@dataclass(frozen=True)
class FeatureInfo:
    """One stage of a network's feature pyramid."""

    name: str  # module (or group of modules) whose output this stage is
    channels: int  # channels of the stage's feature map
    stride: int  # input pixels per feature-map pixel (the stage's total downsampling)


class Classifier(nn.Module):
    """Base class of every classification network.

    Subclasses set ``feature_info``, ``head_modules``, ``input_size`` and
    ``min_input_size`` and implement :meth:`forward_stages` and
    :meth:`forward_head`. The registry reads the two sizes from here.
    """

    feature_info: list[FeatureInfo]
    head_modules: tuple[str, ...] = ()  # attribute names of the head, dropped by features_only
    input_size: tuple[int, int, int] = (3, 224, 224)  # (C, H, W) the paper trained on: ImageNet
    min_input_size: int = 32  # smallest input side (pixels) the stages can process
    num_classes: int
    in_channels: int

    def add_stage(self, name: str, stage: nn.Module, channels: int, stride: int) -> None:
        """Add ``stage`` as the submodule ``name`` and list it in ``feature_info``.

        Registering both at once keeps the module and its feature entry under one name.
        """
        self.add_module(name, stage)
        self.feature_info.append(FeatureInfo(name, channels, stride))

    def forward_stages(self, x: Tensor) -> list[Tensor]:
        """Feature map of every stage listed in ``feature_info``, finest first."""
        raise NotImplementedError

    def forward_features(self, x: Tensor) -> Tensor:
        """The last (coarsest) feature map, before pooling and classification."""
        return self.forward_stages(x)[-1]

    def forward_head(self, features: Tensor) -> Tensor:
        """Class scores from the last feature map."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        check_input(x, self.in_channels, self.min_input_size, type(self).__name__)
        return self.forward_head(self.forward_features(x))


def outputs_in_turn(modules: Iterable[nn.Module], x: Tensor) -> list[Tensor]:
    """Apply ``modules`` one after another to ``x``, keeping each output: the stage maps of a
    network whose stages follow each other."""
    outputs = []
    for module in modules:
        x = module(x)
        outputs.append(x)
    return outputs


def check_input(x: Tensor, in_channels: int, min_size: int, model_name: str) -> None:
    """Raise a clear error when ``x`` is not an (N, C, H, W) batch the model can take."""
    if torch.jit.is_scripting() or torch.jit.is_tracing() or torch.compiler.is_compiling():
        return
    if x.dim() != 4:
        raise CnnzooError(
            f"{model_name} expects a batch of images shaped (N, C, H, W), got shape "
            f"{tuple(x.shape)}; add a batch dimension with x.unsqueeze(0)"
        )
    if x.shape[1] != in_channels:
        raise CnnzooError(
            f"{model_name} was built for {in_channels}-channel input but got "
            f"{x.shape[1]} channels; build it with in_channels={x.shape[1]} or convert "
            "the images"
        )
    check_input_size(model_name, min_size, x.shape)


def he_fan_out_init(
    model: nn.Module, init_linear: Callable[[nn.Linear], None] | None = None
) -> None:
    """He initialisation (He et al. 2015, arXiv:1502.01852) of every convolution, batch norms
    at the identity, and ``init_linear`` for the fully connected layers (None: as built).

    Fan-out, as torchvision initialises ResNet, VGG, the MobileNets and EfficientNet: it
    keeps the gradients' variance through ReLU networks of any depth, so none needs staged
    training. The segmentation heads start from it too.
    """
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear) and init_linear is not None:
            init_linear(module)


def small_normal_init(linear: nn.Linear) -> None:
    """N(0, 0.01) weights and zero bias for a classifier, as torchvision's VGG and MobileNets."""
    nn.init.normal_(linear.weight, 0.0, 0.01)
    nn.init.zeros_(linear.bias)


class FeatureExtractor(nn.Module):
    """A classifier without its head, returning the feature map of each stage.

    Built by ``create_model(name, features_only=True)``; segmentation networks
    reach their encoder only through this interface.
    """

    def __init__(self, model: Classifier, out_indices: Sequence[int] | None = None) -> None:
        super().__init__()
        if not isinstance(model, Classifier):
            raise CnnzooError(
                f"{type(model).__name__} has no feature interface; choose a classifier "
                "from `cnnzoo list` as backbone"
            )
        for name in model.head_modules:
            setattr(model, name, nn.Identity())
        stages = len(model.feature_info)
        indices = tuple(range(stages)) if out_indices is None else tuple(out_indices)
        for index in indices:
            if not -stages <= index < stages:
                raise CnnzooError(
                    f"out_indices {indices} out of range: the model has {stages} stages"
                )
        self.model = model
        self.out_indices = tuple(i % stages for i in indices)
        self.feature_info = [model.feature_info[i] for i in self.out_indices]
        self.in_channels = model.in_channels
        self.min_input_size = model.min_input_size

    def forward(self, x: Tensor) -> list[Tensor]:
        check_input(x, self.in_channels, self.min_input_size, type(self.model).__name__)
        stages = self.model.forward_stages(x)
        return [stages[i] for i in self.out_indices]
