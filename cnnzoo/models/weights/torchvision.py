"""torchvision's state dicts renamed onto cnnzoo's networks, one converter per family.

Our networks name their layers after the papers (``stem``, ``shortcut``,
``fc6``, ``branch3x3``); torchvision numbers them inside flat sequences. The
tensors are the same, only their names differ, so each converter here is a
pure renaming of keys, never a change of values. The same converters load
torchvision's ImageNet weights (:mod:`cnnzoo.models.weights.hub`) and make the offline
test that our networks compute exactly what torchvision's do.

They live side by side here, out of the model files, so that a family file
shows the network alone. A registered network names its torchvision
counterpart (``torchvision="resnet50"``); :func:`converter_for` finds the
converter of that architecture.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import Any

from torch import nn

from cnnzoo.errors import CnnzooError
from cnnzoo.models.classification.mobilenet import V2_ROWS
from cnnzoo.models.registry import get_model_entry, list_models
from cnnzoo.models.segmentation.base import SegmentationModel
from cnnzoo.models.segmentation.deeplab import DeepLabV1, DeepLabV3
from cnnzoo.models.segmentation.fcn import FCN, DilatedFCN
from cnnzoo.models.segmentation.segnet import SegNet

StateDict = dict[str, Any]
StateDictConverter = Callable[[StateDict], StateDict]


def _conv_bn_part(index: str) -> str:
    """torchvision's Conv2dNormActivation is a Sequential (0 = conv, 1 = bn); ours names them."""
    return {"0": "conv", "1": "bn"}[index]


def resnet(state_dict: StateDict) -> StateDict:
    """ResNet (and the backbone of torchvision's segmentation networks).

    torchvision names the stem ``conv1``/``bn1`` at the top level and the shortcut
    projection ``downsample.0``/``downsample.1``; ours are ``stem.conv``/``stem.bn``
    and ``shortcut.conv``/``shortcut.bn``, the words of the paper's Fig. 2 and
    Eq. 2. Everything else has the same name.
    """
    renamed = {}
    for key, value in state_dict.items():
        if key.startswith(("conv1.", "bn1.")):
            key = "stem." + key.replace("conv1.", "conv.").replace("bn1.", "bn.")
        key = key.replace(".downsample.0.", ".shortcut.conv.")
        key = key.replace(".downsample.1.", ".shortcut.bn.")
        renamed[key] = value
    return renamed


def vgg(state_dict: StateDict) -> StateDict:
    """VGG, with or without batch norm: flat ``features.N`` / ``classifier.N`` onto named layers.

    torchvision numbers every layer of one flat ``features`` sequence (conv,
    [batch norm], ReLU, ..., max-pool); ours names them ``blockB.convB_C`` as
    the paper's Table 1 and ``fc6``-``fc8``. Consecutive convolutions of a
    block are two (three with batch norm) numbers apart; a larger gap is a
    max-pool, which starts the next block.
    """
    layers = sorted({int(key.split(".")[1]) for key in state_dict if key.startswith("features.")})
    convolutions = [i for i in layers if state_dict[f"features.{i}.weight"].dim() == 4]
    batch_norm = any(i + 1 in layers for i in convolutions)
    step = 3 if batch_norm else 2
    names = {"classifier.0": "fc6", "classifier.3": "fc7", "classifier.6": "fc8"}
    block, conv, previous = 1, 0, convolutions[0]
    for index in convolutions:
        if index - previous > step:
            block, conv = block + 1, 0
        conv, previous = conv + 1, index
        names[f"features.{index}"] = f"features.block{block}.conv{block}_{conv}"
        if batch_norm:
            names[f"features.{index + 1}"] = f"features.block{block}.bn{block}_{conv}"
    converted = {}
    for key, value in state_dict.items():
        module, _, tensor_name = key.rpartition(".")
        if module not in names:
            raise CnnzooError(f"unexpected key {key!r}: this is not a torchvision VGG state dict")
        converted[f"{names[module]}.{tensor_name}"] = value
    return converted


# Checkpoints saved before PyTorch forbade dots in module names call a layer's parts
# "norm.1", "conv.2"; torchvision renames them on loading, and so do we.
_OLD_DENSE_LAYER_KEY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.([12]\..*)$")
_DENSE_LAYER_PART = {
    "norm1": "bottleneck.norm",
    "conv1": "bottleneck.conv",
    "norm2": "conv.norm",
    "conv2": "conv.conv",
}


def densenet(state_dict: StateDict) -> StateDict:
    """DenseNet: ``features.denseblockB.denselayerL.norm1`` onto ``blocks.B.layers.L.bottleneck``.

    torchvision keeps every layer in one ``features`` sequence and numbers the
    parts of a dense layer; ours groups the blocks and transitions in lists and
    names a layer's two halves after the paper's DenseNet-B: the 1x1
    ``bottleneck`` and the 3x3 ``conv`` (§3, "Bottleneck layers").
    """
    converted = {}
    for key, value in state_dict.items():
        old = _OLD_DENSE_LAYER_KEY.match(key)
        if old:
            key = old.group(1) + old.group(2)
        converted[_densenet_key(key)] = value
    return converted


def _densenet_key(key: str) -> str:
    if key.startswith("classifier."):
        return key
    parts = key.removeprefix("features.").split(".")
    name, rest = parts[0], parts[1:]
    if name in ("conv0", "norm0"):
        return ".".join(["stem", name[:-1], *rest])
    if name == "norm5":
        return ".".join(["final_norm", *rest])
    if name.startswith("transition"):
        return ".".join(["transitions", str(int(name.removeprefix("transition")) - 1), *rest])
    if name.startswith("denseblock"):
        block = int(name.removeprefix("denseblock")) - 1
        layer = int(rest[0].removeprefix("denselayer")) - 1
        part = _DENSE_LAYER_PART[rest[1]]
        return ".".join(["blocks", str(block), "layers", str(layer), part, *rest[2:]])
    raise KeyError(f"unexpected key in a torchvision DenseNet state dict: {key}")


def googlenet(state_dict: StateDict) -> StateDict:
    """GoogLeNet: torchvision numbers the Inception branches 1-4; ours name their kernels.

    The names say what each branch of the paper's Fig. 2(b) computes:
    ``branch1x1``, ``branch3x3``, ``branch5x5`` and ``branch_pool``.
    """
    branch_names = {
        ".branch1.": ".branch1x1.",
        ".branch2.": ".branch3x3.",
        ".branch3.": ".branch5x5.",
        ".branch4.": ".branch_pool.",
    }
    converted = {}
    for key, value in state_dict.items():
        for theirs, ours in branch_names.items():
            key = key.replace(theirs, ours)
        converted[key] = value
    return converted


def mobilenet_v2(state_dict: StateDict) -> StateDict:
    """MobileNetV2: ``features.{i}.conv.{j}`` onto ``stem``, ``blocks.{row}.{block}``, etc.

    torchvision numbers the blocks consecutively; ours groups them by the rows of
    the paper's Table 2 and names each block's parts (expand, depthwise, project).
    """
    positions = [
        (row, block) for row, (*_, repeats, _) in enumerate(V2_ROWS) for block in range(repeats)
    ]
    last = len(positions) + 1
    converted = {}
    for key, value in state_dict.items():
        match = re.fullmatch(r"features\.(\d+)\.(.+)", key)
        if key.startswith("classifier.1."):
            new_key = "classifier." + key.removeprefix("classifier.1.")
        elif match is None:
            raise KeyError(f"unexpected key in a torchvision MobileNetV2 state dict: {key}")
        elif match[1] in ("0", str(last)):
            index, rest = match[2].split(".", 1)
            module = "stem" if match[1] == "0" else "final_conv"
            new_key = f"{module}.{_conv_bn_part(index)}.{rest}"
        else:
            row, block = positions[int(match[1]) - 1]
            expands = f"features.{match[1]}.conv.3.weight" in state_dict
            new_key = f"blocks.{row}.{block}.{_mobilenet_v2_block_key(match[2], expands)}"
        converted[new_key] = value
    return converted


def _mobilenet_v2_block_key(key: str, expands: bool) -> str:
    # torchvision's block.conv: [expand (Conv2dNormActivation)], depthwise
    # (Conv2dNormActivation), projection conv, projection BN.
    parts = ["expand", "depthwise", "project.conv", "project.bn"]
    if not expands:
        parts = parts[1:]
    _, index, rest = key.split(".", 2)
    part = parts[int(index)]
    if part in ("expand", "depthwise"):
        sub, rest = rest.split(".", 1)
        part = f"{part}.{_conv_bn_part(sub)}"
    return f"{part}.{rest}"


def mobilenet_v3(state_dict: StateDict) -> StateDict:
    """MobileNetV3: ``features.{i}.block.{j}`` and ``classifier.{0,3}`` onto ours.

    torchvision's blocks list only the parts they have ([expand], depthwise,
    [squeeze-excitation], projection), so the same number means different
    parts in different blocks; ours names them. Its classifier's hidden layer
    (paper Fig. 5, the 1280/1024-wide layer after pooling) becomes ``hidden``.
    """
    last = max(int(key.split(".")[1]) for key in state_dict if key.startswith("features."))
    head = {"classifier.0.": "hidden.0.", "classifier.3.": "classifier."}
    converted = {}
    for key, value in state_dict.items():
        if key[:13] in head:
            converted[head[key[:13]] + key[13:]] = value
            continue
        match = re.fullmatch(r"features\.(\d+)\.(.+)", key)
        if match is None:
            raise KeyError(f"unexpected key in a torchvision MobileNetV3 state dict: {key}")
        index, rest = int(match[1]), match[2]
        if index in (0, last):
            sub, rest = rest.split(".", 1)
            module = "stem" if index == 0 else "final_conv"
            converted[f"{module}.{_conv_bn_part(sub)}.{rest}"] = value
            continue
        prefix = f"features.{index}.block."
        present = {k[len(prefix) :].split(".")[0] for k in state_dict if k.startswith(prefix)}
        has_se = f"{prefix}{len(present) - 2}.fc1.weight" in state_dict
        parts = ["expand", "depthwise", *(["se"] if has_se else []), "project"]
        parts = parts[len(parts) - len(present) :]
        _, part, rest = rest.split(".", 2)
        name = parts[int(part)]
        if name != "se":
            sub, rest = rest.split(".", 1)
            name = f"{name}.{_conv_bn_part(sub)}"
        converted[f"blocks.{index - 1}.{name}.{rest}"] = value
    return converted


def efficientnet(state_dict: StateDict) -> StateDict:
    """EfficientNet: ``features.{row}.{block}.block.{part}`` onto ``blocks.{row}.{block}.{part}``.

    torchvision's MBConv lists [expand], depthwise, squeeze-excitation and
    projection by number; ours names them, and names the stem and the final
    1x1 convolution instead of numbering them as the first and last rows.
    """
    last = max(int(key.split(".")[1]) for key in state_dict if key.startswith("features."))
    converted = {}
    for key, value in state_dict.items():
        if key.startswith("classifier.1."):
            converted["classifier." + key.removeprefix("classifier.1.")] = value
            continue
        block = re.fullmatch(r"features\.(\d+)\.(\d+)\.block\.(\d+)\.(.+)", key)
        if block:
            row, index, part, rest = block.groups()
            expands = f"features.{row}.{index}.block.3.0.weight" in state_dict
            parts = ["expand", "depthwise", "se", "project"][0 if expands else 1 :]
            name = parts[int(part)]
            if name != "se":
                sub, rest = rest.split(".", 1)
                name = f"{name}.{_conv_bn_part(sub)}"
            converted[f"blocks.{int(row) - 1}.{index}.{name}.{rest}"] = value
            continue
        outer = re.fullmatch(r"features\.(\d+)\.([01])\.(.+)", key)
        if outer is None or outer[1] not in ("0", str(last)):
            raise KeyError(f"unexpected key in a torchvision EfficientNet state dict: {key}")
        module = "stem" if outer[1] == "0" else "final_conv"
        converted[f"{module}.{_conv_bn_part(outer[2])}.{outer[3]}"] = value
    return converted


# torchvision's FCNHead is a flat Sequential (conv, bn, relu, dropout, conv); ours nests the
# first three in a ConvBNAct.
_HEAD_KEYS = ((r"\.0\.", ".0.conv."), (r"\.1\.", ".0.bn."), (r"\.4\.", ".2."))


def _rename_head(key: str, prefix: str, ours: str) -> str:
    """``prefix.N.tensor`` of a torchvision FCNHead as the same tensor of our ``ours`` head."""
    rest = key[len(prefix) :]
    for pattern, replacement in _HEAD_KEYS:
        if re.match(pattern, rest):
            return ours + re.sub(pattern, replacement, rest, count=1)
    raise KeyError(key)


def _segmentation_backbone(state_dict: StateDict, backbone: str) -> StateDict:
    """The ``backbone.*`` tensors of a torchvision segmentation model as our encoder's."""
    architecture = get_model_entry(backbone).torchvision
    prefix = "backbone."
    tensors = {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}
    if architecture is not None:
        tensors = converter_for(architecture)(tensors)
    return {f"encoder.model.{k}": v for k, v in tensors.items()}


def fcn(state_dict: StateDict, backbone: str = "resnet50") -> StateDict:
    """torchvision's ``fcn_resnet50`` (or 101) onto ``fcn_dilated``.

    The backbone keys go through the backbone's own converter; the heads
    ``classifier`` and ``aux_classifier`` become ``head`` and ``aux``.
    """
    converted = _segmentation_backbone(state_dict, backbone)
    for key, value in state_dict.items():
        for prefix, ours in (("classifier", "head"), ("aux_classifier", "aux")):
            if key.startswith(prefix + "."):
                converted[_rename_head(key, prefix, ours)] = value
    return converted


# torchvision's DeepLabHead: classifier.0 is its ASPP, classifier.1/2 the 3x3 conv and batch
# norm, classifier.4 the 1x1 classifier. Its ASPP branches are flat (conv, bn, relu)
# sequences; its pooling branch starts with the pooling layer.
_DEEPLAB_V3_KEYS = (
    (r"^classifier\.0\.convs\.4\.1\.", "aspp.branches.4.conv.conv."),
    (r"^classifier\.0\.convs\.4\.2\.", "aspp.branches.4.conv.bn."),
    (r"^classifier\.0\.convs\.(\d)\.0\.", r"aspp.branches.\1.conv."),
    (r"^classifier\.0\.convs\.(\d)\.1\.", r"aspp.branches.\1.bn."),
    (r"^classifier\.0\.project\.0\.", "aspp.project.conv."),
    (r"^classifier\.0\.project\.1\.", "aspp.project.bn."),
    (r"^classifier\.1\.", "head.0.conv."),
    (r"^classifier\.2\.", "head.0.bn."),
    (r"^classifier\.4\.", "head.1."),
)


def deeplab_v3(state_dict: StateDict, backbone: str = "resnet50") -> StateDict:
    """torchvision's ``deeplabv3_resnet50`` (or 101) onto ``deeplab_v3``.

    Build ours with ``output_stride=8``: torchvision's DeepLab-v3 dilates
    layer3 and layer4 and uses rates 12/24/36. Its ASPP and head are flat
    sequences; ours name the branches, the projection and the head's parts.
    """
    converted = _segmentation_backbone(state_dict, backbone)
    for key, value in state_dict.items():
        if key.startswith("aux_classifier."):
            converted[_rename_head(key, "aux_classifier", "aux")] = value
        elif key.startswith("classifier."):
            for pattern, replacement in _DEEPLAB_V3_KEYS:
                if re.match(pattern, key):
                    converted[re.sub(pattern, replacement, key)] = value
                    break
            else:
                raise CnnzooError(f"unexpected key {key!r} in a torchvision DeepLab-v3 state dict")
    return converted


# torchvision architecture name (its prefix) -> the converter of that family.
CONVERTERS: dict[str, StateDictConverter] = {
    "resnet": resnet,
    "vgg": vgg,
    "densenet": densenet,
    "googlenet": googlenet,
    "mobilenet_v2": mobilenet_v2,
    "mobilenet_v3": mobilenet_v3,
    "efficientnet": efficientnet,
}


def converter_for(architecture: str) -> StateDictConverter:
    """The converter for torchvision's ``architecture`` (e.g. ``"resnet50"``, ``"vgg16_bn"``)."""
    for prefix, converter in CONVERTERS.items():
        if architecture.startswith(prefix):
            return converter
    raise CnnzooError(f"no converter for torchvision's {architecture!r}")


def torchvision_state_dict(name: str, state_dict: StateDict) -> StateDict:
    """A state dict of torchvision's counterpart of cnnzoo ``name``, renamed for ``name``."""
    entry = get_model_entry(name)
    if entry.torchvision is None:
        raise CnnzooError(f"{name!r} has no torchvision counterpart to take weights from")
    return converter_for(entry.torchvision)(dict(state_dict))


# VGG's fc6 reads the 7x7 pool5 map of a 224x224 image (Simonyan & Zisserman, §2.1).
VGG_POOL5_SIDE = 7
# DeepLab-v1 LargeFOV (Chen et al. 2014, §4.1, "decimation"): every 4th of fc6's 4,096 filters
# (1,024 remain) and every 3rd tap of its 7x7 kernel (taps 0, 3, 6: a 3x3 kernel, used at rate
# 12); fc7 keeps every 4th filter and every 4th input, 1,024 x 1,024.
LARGEFOV_FILTER_STEP = 4
LARGEFOV_TAP_STEP = 3
ENCODER = "encoder.model."  # where a registry backbone's tensors sit in a segmentation network


def _vgg_fully_connected(state_dict: StateDict) -> tuple[StateDict, dict[str, Any]]:
    """A torchvision VGG's convolutions, renamed, and its fc6/fc7 as 4D convolution kernels."""
    converted = vgg(state_dict)
    convolutions = {k: v for k, v in converted.items() if k.startswith("features.")}
    fc6 = converted["fc6.weight"].unflatten(1, (-1, VGG_POOL5_SIDE, VGG_POOL5_SIDE))
    kernels = {
        "fc6.weight": fc6,
        "fc6.bias": converted["fc6.bias"],
        "fc7.weight": converted["fc7.weight"][:, :, None, None],
        "fc7.bias": converted["fc7.bias"],
    }
    return convolutions, kernels


def fcn_from_vgg(state_dict: StateDict) -> StateDict:
    """A torchvision VGG onto FCN-32s/16s/8s: convolutions into the encoder, fc6/fc7 recast.

    Long et al. 2015, §3.1: the fully connected layers "can also be viewed as
    convolutions with kernels that cover their entire input regions". fc6's
    4096 x 25088 matrix is the 4096 x 512 x 7 x 7 kernel of a convolution over
    pool5 (torchvision flattens pool5 channel-major, so the reshape is exact),
    fc7's 4096 x 4096 a 1x1 kernel. fc8 (the 1,000 ImageNet classes) is dropped:
    the score layers start at zero (§4.3).
    """
    convolutions, kernels = _vgg_fully_connected(state_dict)
    converted = {ENCODER + k: v for k, v in convolutions.items()}
    for layer, index in (("fc6", 0), ("fc7", 3)):
        for tensor in ("weight", "bias"):
            converted[f"fully_connected.{index}.{tensor}"] = kernels[f"{layer}.{tensor}"]
    return converted


def deeplab_largefov_from_vgg(state_dict: StateDict) -> StateDict:
    """A torchvision VGG-16 onto DeepLab-v1 LargeFOV, fc6 and fc7 subsampled by decimation.

    Chen et al. 2014 (arXiv:1412.7062), §4.1: LargeFOV "spatially subsamples
    (by simple decimation) the first FC layer" to a 3x3 kernel at rate 12 and
    reduces it from 4,096 to 1,024 channels. The paper does not list which taps
    and filters it keeps; we keep taps 0, 3 and 6 of each 7x7 row and column
    (the corners and centre, so rate 12 at stride 8 spans what the 7x7 kernel
    spanned at stride 32, about 3 pool5 cells per tap) and every 4th filter.
    fc7 keeps the same filters of its 4,096 outputs and inputs. fc8 is new.
    """
    convolutions, kernels = _vgg_fully_connected(state_dict)
    filters, taps = slice(None, None, LARGEFOV_FILTER_STEP), slice(None, None, LARGEFOV_TAP_STEP)
    converted = {ENCODER + k: v for k, v in convolutions.items()}
    converted["classifier.0.weight"] = kernels["fc6.weight"][filters, :, taps, taps].clone()
    converted["classifier.0.bias"] = kernels["fc6.bias"][filters].clone()
    converted["classifier.3.weight"] = kernels["fc7.weight"][filters, filters].clone()
    converted["classifier.3.bias"] = kernels["fc7.bias"][filters].clone()
    return converted


def segnet_from_vgg_bn(state_dict: StateDict) -> StateDict:
    """A torchvision VGG-16-BN onto SegNet's encoder: its 13 convolutions and batch norms.

    Badrinarayanan et al. 2015, §3: the encoder "is topologically identical to
    the 13 convolutional layers in the VGG16 network" and starts from its
    ImageNet weights; the fully connected layers are discarded. Our stage ``B``
    holds block ``B``'s convolutions as (conv, batch norm, ReLU) sequences.
    """
    converted = {}
    for key, value in vgg(state_dict).items():
        layer = re.fullmatch(r"features\.block(\d+)\.(conv|bn)\d+_(\d+)\.(.+)", key)
        if layer is None:
            continue  # fc6-fc8
        block, kind, conv, tensor = layer.groups()
        part = 0 if kind == "conv" else 1
        converted[f"encoder.{int(block) - 1}.convs.{int(conv) - 1}.{part}.{tensor}"] = value
    return converted


def backbone_encoder(state_dict: StateDict, architecture: str) -> StateDict:
    """A torchvision classifier onto the encoder of a segmentation network on that backbone."""
    return {ENCODER + k: v for k, v in converter_for(architecture)(state_dict).items()}


# torchvision's own segmentation networks: our class and registered name, the name prefix of
# theirs, the converter. They equal ours on ResNet-50/101 at output stride 8 (their layer3 and
# layer4 dilated).
TORCHVISION_SEGMENTATION = (
    (DilatedFCN, "fcn_dilated", "fcn", fcn),
    (DeepLabV3, "deeplab_v3", "deeplabv3", deeplab_v3),
)
TORCHVISION_SEGMENTATION_BACKBONES = ("resnet50", "resnet101")
TORCHVISION_SEGMENTATION_STRIDE = 8


def segmentation_weights(model: SegmentationModel, whole: bool) -> tuple[str, StateDictConverter]:
    """The torchvision weights a segmentation network starts from, and their converter.

    ``whole``: torchvision's trained weights of the whole network where
    torchvision has this very network (``fcn_resnet50``, ``deeplabv3_resnet101``,
    ...); otherwise, and always when not ``whole``, the backbone's ImageNet
    weights, converted as the network's paper did (FCN, DeepLab-v1, SegNet).
    """
    backbone = model.backbone
    if backbone is None:
        raise CnnzooError(
            f"{type(model).__name__} on its own encoder has no pretrained weights; build it "
            "on a backbone with torchvision weights, e.g. backbone='resnet34'"
        )
    for network, _, prefix, converter in TORCHVISION_SEGMENTATION if whole else ():
        if isinstance(model, network) and backbone in TORCHVISION_SEGMENTATION_BACKBONES:
            stride = max(info.stride for info in model.encoder.feature_info)
            if stride == TORCHVISION_SEGMENTATION_STRIDE:
                return f"{prefix}_{backbone}", partial(converter, backbone=backbone)
    architecture = get_model_entry(backbone).torchvision
    if architecture is None:
        raise CnnzooError(f"backbone {backbone!r} has no torchvision weights; {_choose_backbone()}")
    if isinstance(model, FCN) and not isinstance(model.fully_connected, nn.Identity):
        return architecture, fcn_from_vgg
    if isinstance(model, DeepLabV1) and get_model_entry(backbone).family == "VGG":
        return architecture, deeplab_largefov_from_vgg
    if isinstance(model, SegNet):
        return architecture, segnet_from_vgg_bn
    return architecture, partial(backbone_encoder, architecture=architecture)


def _choose_backbone() -> str:
    classifiers = list_models(task="classification")
    with_weights = [n for n in classifiers if get_model_entry(n).torchvision is not None]
    return f"backbones that have them: {', '.join(with_weights)}"
