"""Dilated (atrous) convolution: a larger field at the cost of an ordinary one.

* Yu & Koltun, "Multi-Scale Context Aggregation by Dilated Convolutions",
  2015, arXiv:1511.07122: a 3x3 kernel at rate r spreads its 9 taps over a
  (2r+1)x(2r+1) window, so a rate-2 3x3 sees 5x5 for the weights and
  multiply-adds of a 3x3; with rates doubling layer by layer (1, 2, 4, ...)
  the field grows exponentially with depth while the cost grows linearly.
* Chen et al., "Semantic Image Segmentation with Deep Convolutional Nets and
  Fully Connected CRFs" (DeepLab v1), 2014, arXiv:1412.7062, sections 3.1 and
  4: VGG-16's last two poolings run at stride 1 and the layers after them are
  dilated (conv5 by 2, fc6 by 12: "LargeFOV"), so the scores stay at 1/8 of
  the image with the field of the strided network.

The experiment counts fields with :mod:`cnnzoo.analysis.receptive_field` and
FLOPs with :mod:`cnnzoo.measure.flops`. The registered ``deeplab_v1_largefov``
has no switch for its dilation, so the comparison is built from its parts:
the same network with every convolution's rate set to 1
(:func:`without_dilation`: identical weights and FLOPs, a smaller field), and
the network whose poolings keep their strides (``create_encoder`` at output
stride 32, which needs no dilation; a coarser map). The three are measured at
full size and trained, at 1/8 of VGG-16's width, on the synthetic shapes.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from cnnzoo.analysis.receptive_field import receptive_fields
from cnnzoo.analysis.survey_arithmetic import conv_stack_cost
from cnnzoo.data import load_data, plain_request
from cnnzoo.experiments.base import ExperimentRun, describe_budget, register_experiment
from cnnzoo.experiments.fcn_skips import SEGMENTATION_SCORES, train_segmenter
from cnnzoo.measure.flops import count_flops, parameter_count
from cnnzoo.models.classification.vgg import VGG_CONFIGS, make_layers
from cnnzoo.models.registry import create_model
from cnnzoo.models.segmentation.base import bilinear_resize, create_encoder
from cnnzoo.models.segmentation.deeplab import LARGEFOV_RATE, DeepLabV1, dilated_fc

# Layers of the stacks compared in the field-growth table, and their width and map side.
STACK_DEPTHS = range(1, 7)
STACK_CHANNELS, STACK_SIDE = 64, 64
# How the rate of layer i (from 0) is chosen in each kind of stack.
STACK_RATES = {
    "ordinary (rate 1)": lambda layer: 1,
    "constant rate 2": lambda layer: 2,
    "doubling rates 1, 2, 4, ...": lambda layer: 2**layer,
}
GRIDDING_DEPTH = 4  # the stacks drawn in the figure

# DeepLab-v1 on shapes: VGG-16's configuration at 1/8 of its width, LargeFOV head likewise.
WIDTH_DIVISOR = 8
HEAD_CHANNELS = 1024 // WIDTH_DIVISOR
VARIANTS = ("dilated (DeepLab-v1)", "rate 1, stride 8", "strides kept, stride 32")
DATA_SIDE = {"quick": 32, "full": 64}
RECIPE = {
    "quick": dict(iterations=3, batch_size=16),
    "full": dict(epochs=5, batch_size=16),
}
FULL_SIZE_INPUT = (3, 321, 321)  # DeepLab's training crops (Chen et al. 2014, section 4)


def without_dilation(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every convolution at rate 1, padded to keep its map size.

    The weights (and so the parameters and FLOPs) are untouched: only the
    spacing of each kernel's taps changes, which is exactly what dilation adds.
    """
    plain = copy.deepcopy(model)
    for module in plain.modules():
        if isinstance(module, nn.Conv2d) and module.dilation != (1, 1):
            module.dilation = (1, 1)
            module.padding = tuple((k - 1) // 2 for k in module.kernel_size)
    return plain


class ReducedDeepLabV1(nn.Module):
    """DeepLab-v1 LargeFOV at 1/8 of VGG-16's width: the same layers, cheap enough to train.

    ``make_layers`` builds VGG-16's configuration (batch-normalised, so that it
    trains from scratch in minutes) with DeepLab's stride-1 poolings and
    dilated conv5 at ``output_stride`` 8; the head is DeepLab's own
    :func:`~cnnzoo.models.segmentation.deeplab.dilated_fc` (fc6 3x3 at rate 12, fc7,
    fc8) at 1/8 of its width, and the scores are upsampled bilinearly.
    """

    def __init__(self, output_stride: int, num_classes: int, in_channels: int) -> None:
        super().__init__()
        config = [v if v == "M" else int(v) // WIDTH_DIVISOR for v in VGG_CONFIGS["D"]]
        self.features = make_layers(config, in_channels, True, output_stride)
        self.classifier = dilated_fc(config[-2], LARGEFOV_RATE, num_classes, HEAD_CHANNELS)

    def forward(self, x: Tensor) -> Tensor:
        return bilinear_resize(self.classifier(self.features(x)), x.shape[-2:])


def _reduced_variants(num_classes: int, seed: int) -> dict[str, nn.Module]:
    """The three networks, each starting from the same weights (they have the same shapes)."""
    torch.manual_seed(seed)
    dilated = ReducedDeepLabV1(8, num_classes, 3)
    strided = without_dilation(ReducedDeepLabV1(32, num_classes, 3))
    strided.load_state_dict(dilated.state_dict())
    return dict(zip(VARIANTS, (dilated, without_dilation(dilated), strided)))


def _full_size_variants() -> dict[str, nn.Module]:
    """``deeplab_v1_largefov`` (VGG-16), without its dilation, and with VGG's strides kept."""
    with torch.device("meta"):
        dilated = create_model("deeplab_v1_largefov", num_classes=21)
        strided = without_dilation(DeepLabV1(create_encoder("vgg16", 3, 32), 21, 3))
    return dict(zip(VARIANTS, (dilated, without_dilation(dilated), strided)))


def _output_field(model: nn.Module, input_shape: Sequence[int]) -> tuple[int, int, int]:
    """Field, stride (jump) and side of the score map, before it is upsampled."""
    score_sides: list[int] = []
    hook = model.classifier.register_forward_hook(
        lambda module, inputs, output: score_sides.append(output.shape[-1])
    )
    try:
        field = receptive_fields(model, input_shape)["classifier"]
    finally:
        hook.remove()
    return int(field.size[0]), int(field.jump[0]), score_sides[-1]


def _stack(rates: Sequence[int], channels: int) -> nn.Sequential:
    return nn.Sequential(
        *(nn.Conv2d(channels, channels, 3, padding=r, dilation=r, bias=False) for r in rates)
    )


@register_experiment(
    "dilation",
    title="Dilated convolution: receptive field against cost, and DeepLab-v1 without it",
    claim="A 3x3 convolution at rate 2 sees 5x5 at the cost of a 3x3, stacks with doubling "
    "rates grow their field exponentially, and DeepLab-v1 needs its dilation to keep a large "
    "field at output stride 8.",
)
def dilation(run: ExperimentRun) -> None:
    _single_layer(run)
    _stacks(run)
    _full_size(run)
    _train_on_shapes(run)


def _single_layer(run: ExperimentRun) -> None:
    channels, side = STACK_CHANNELS, STACK_SIDE
    costs = {
        "3x3": conv_stack_cost([3], channels),
        "3x3 rate 2": conv_stack_cost([3], channels, dilation=2),
        "5x5": conv_stack_cost([5], channels),
    }
    flops = {
        name: count_flops(_layer(name, channels), (channels, side, side)).total for name in costs
    }
    run.results["single_layer"] = {
        name: {"receptive_field": c.receptive_field, "weights": c.weights, "flops": flops[name]}
        for name, c in costs.items()
    }
    run.write(
        f"**One layer.** C = {channels} channels in and out on a {side}x{side} map (weights "
        "without biases; FLOPs = 2 x multiply-accumulates)."
    )
    run.table(
        ["layer", "receptive field", "weights", "MFLOPs"],
        [
            [n, f"{c.receptive_field}x{c.receptive_field}", c.weights, f"{flops[n] / 1e6:.1f}"]
            for n, c in costs.items()
        ],
    )
    run.check(
        "a rate-2 3x3 sees the 5x5 window of a 5x5 with the weights and FLOPs of a 3x3",
        costs["3x3 rate 2"].receptive_field == costs["5x5"].receptive_field == 5
        and costs["3x3 rate 2"].weights == costs["3x3"].weights
        and flops["3x3 rate 2"] == flops["3x3"] < flops["5x5"],
    )


def _layer(name: str, channels: int) -> nn.Conv2d:
    kernel, rate = (5, 1) if name == "5x5" else (3, 2 if "rate" in name else 1)
    with torch.device("meta"):
        return nn.Conv2d(
            channels, channels, kernel, padding=rate * (kernel - 1) // 2, dilation=rate, bias=False
        )


def _stacks(run: ExperimentRun) -> None:
    channels, side = STACK_CHANNELS, STACK_SIDE
    table: dict[str, list[dict[str, int]]] = {}
    for kind, rate_of in STACK_RATES.items():
        table[kind] = []
        for depth in STACK_DEPTHS:
            with torch.device("meta"):
                stack = _stack([rate_of(layer) for layer in range(depth)], channels)
            fields = receptive_fields(stack, (channels, side, side))
            table[kind].append(
                {
                    "layers": depth,
                    "receptive_field": int(fields[str(depth - 1)].size[0]),
                    "flops": count_flops(stack, (channels, side, side)).total,
                }
            )
    run.results["stacks"] = table
    run.write(
        f"**Stacks of 3x3 convolutions** (C = {channels}, {side}x{side} map): the field of "
        "the last layer as layers are added, at rate 1, at a constant rate 2, and with the "
        "rate doubling each layer (Yu & Koltun's context module). The FLOPs of a stack do "
        "not depend on its rates."
    )
    kinds = list(STACK_RATES)
    run.table(
        ["layers", *(f"field, {k}" for k in kinds), "GFLOPs (any rates)"],
        [
            [
                depth,
                *(table[k][index]["receptive_field"] for k in kinds),
                f"{table[kinds[0]][index]['flops'] / 1e9:.2f}",
            ]
            for index, depth in enumerate(STACK_DEPTHS)
        ],
    )
    doubling = table[kinds[2]]
    run.check(
        "with doubling rates the field is 2^(L+1) - 1 after L layers; at rate 1 it is 2L + 1",
        all(row["receptive_field"] == 2 ** (row["layers"] + 1) - 1 for row in doubling)
        and all(row["receptive_field"] == 2 * row["layers"] + 1 for row in table[kinds[0]]),
    )
    run.check(
        "stacks of the same depth cost the same FLOPs whatever their rates",
        all(len({table[k][i]["flops"] for k in kinds}) == 1 for i in range(len(STACK_DEPTHS))),
    )
    _plot_fields(run, table)


def _paths_to_input(rates: Sequence[int], side: int) -> Tensor:
    """How many paths join each input pixel to the centre unit of a one-channel stack."""
    stack = _stack(rates, 1).double()
    for conv in stack:
        nn.init.ones_(conv.weight)
    image = torch.ones(1, 1, side, side, dtype=torch.float64, requires_grad=True)
    output = stack(image)
    output[0, 0, side // 2, side // 2].backward()
    return image.grad[0, 0]


def _plot_fields(run: ExperimentRun, table: dict[str, list[dict[str, int]]]) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 3.2))
    axes = fig.subplots(1, 4)
    for kind, rows in table.items():
        axes[0].plot(
            [r["layers"] for r in rows], [r["receptive_field"] for r in rows], "o-", label=kind
        )
    axes[0].set_yscale("log", base=2)
    axes[0].set_xlabel("3x3 layers")
    axes[0].set_ylabel("receptive field (pixels)")
    axes[0].legend(fontsize=7)
    side = 2 ** (GRIDDING_DEPTH + 1) + 3
    for ax, rate_of in zip(axes[1:], STACK_RATES.values()):
        rates = [rate_of(layer) for layer in range(GRIDDING_DEPTH)]
        paths = _paths_to_input(rates, side)
        ax.imshow(((paths > 0).double() + paths / paths.max()).numpy(), cmap="magma")
        ax.set_title(f"rates {', '.join(map(str, rates))}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    run.save_figure(
        fig,
        "dilation_fields.png",
        f"Field against depth; input pixels reaching one output of {GRIDDING_DEPTH}-layer "
        "stacks (constant rate 2 leaves holes: gridding)",
        bbox_inches="tight",
    )


def _full_size(run: ExperimentRun) -> None:
    variants = _full_size_variants()
    rows, measured = [], {}
    for name, model in variants.items():
        field, stride, map_side = _output_field(model, FULL_SIZE_INPUT)
        measured[name] = {
            "params": parameter_count(model),
            "flops": count_flops(model, FULL_SIZE_INPUT).total,
            "receptive_field": field,
            "output_stride": stride,
            "score_map_side": map_side,
        }
        m = measured[name]
        rows.append(
            [name, m["params"], f"{m['flops'] / 1e9:.1f}", stride, f"{map_side}x{map_side}", field]
        )
    run.results["deeplab_v1_vgg16"] = measured
    run.write(
        "**DeepLab-v1 LargeFOV at full size** (VGG-16, 21 classes, 321x321 input): as "
        "registered; the same network with every rate set to 1 (conv5 and fc6); and the "
        "network whose pool4 and pool5 keep stride 2 (VGG-16 at output stride 32, nothing "
        "to dilate, fc6 at rate 1). Field = receptive field of one score before upsampling."
    )
    run.table(
        ["network", "params", "GFLOPs", "output stride", "score map", "receptive field"], rows
    )
    dilated, plain, strided = (measured[v] for v in VARIANTS)
    _check_variants(run, "VGG-16", dilated, plain, strided)


def _check_variants(
    run: ExperimentRun, label: str, dilated: dict, plain: dict, strided: dict
) -> None:
    run.check(
        f"{label}: removing the dilation keeps parameters and FLOPs and shrinks the field",
        dilated["params"] == plain["params"] == strided["params"]
        and dilated["flops"] == plain["flops"]
        and plain["receptive_field"] < dilated["receptive_field"],
        f"field {dilated['receptive_field']} -> {plain['receptive_field']}",
    )
    run.check(
        f"{label}: dilation keeps output stride 8 where the strided network falls to 32",
        dilated["output_stride"] == plain["output_stride"] == 8
        and strided["output_stride"] == 32
        and strided["flops"] < dilated["flops"],
    )


def _train_on_shapes(run: ExperimentRun) -> None:
    side = DATA_SIDE[run.mode]
    measured = _train_reduced_variants(run, side)
    run.results["shapes"] = {"image_size": side, "recipe": RECIPE[run.mode], "networks": measured}
    _report_shapes(run, measured, side)
    dilated, plain, strided = (measured[v] for v in VARIANTS)
    _check_variants(run, f"VGG-16/{WIDTH_DIVISOR}", dilated, plain, strided)
    _plot_shapes(run, measured, side)
    run.finding(
        "DeepLab-v1 segments better with its dilation than with rate 1 at the same stride",
        dilated["miou"] > plain["miou"],
        f"mIoU {dilated['miou']:.4f} vs {plain['miou']:.4f}",
    )
    run.finding(
        "DeepLab-v1 segments better at output stride 8 (dilated) than at stride 32",
        dilated["miou"] > strided["miou"],
        f"mIoU {dilated['miou']:.4f} vs {strided['miou']:.4f}",
    )


def _train_reduced_variants(run: ExperimentRun, side: int) -> dict[str, dict[str, Any]]:
    """The three narrowed networks from the same weights: field, stride, cost and scores."""
    data = load_data("shapes", plain_request(image_size=(side, side), in_channels=3, seed=run.seed))
    measured: dict[str, dict[str, Any]] = {}
    variants = _reduced_variants(len(data.class_names), run.seed)
    for name, model in run.progress(variants.items(), "training"):
        field, stride, map_side = _output_field(model, (3, side, side))
        params, flops = parameter_count(model), count_flops(model, (3, side, side)).total
        metrics = train_segmenter(model, data, RECIPE[run.mode], lr=2e-3, seed=run.seed)
        measured[name] = {
            "params": params,
            "flops": flops,
            "receptive_field": field,
            "output_stride": stride,
            "score_map_side": map_side,
            **{key: metrics[key] for key in SEGMENTATION_SCORES},
        }
    return measured


def _report_shapes(run: ExperimentRun, measured: dict[str, dict[str, Any]], side: int) -> None:
    run.write(
        f"**Trained on shapes** ({side}x{side}, 1,000 training and 200 test images, 4 "
        f"classes): the three networks at 1/{WIDTH_DIVISOR} of VGG-16's width (batch "
        f"norm after every convolution, fc6/fc7 with {HEAD_CHANNELS} channels), starting "
        f"from the same weights; Adam lr 2e-3 (cosine), weight decay 1e-4, "
        f"{describe_budget(RECIPE[run.mode])}, no augmentation. Test mIoU of the last weights."
    )
    run.table(
        [
            "network",
            "params",
            "MFLOPs",
            "output stride",
            "score map",
            "receptive field",
            "mIoU",
            "pixel acc",
        ],
        [
            [
                name,
                m["params"],
                f"{m['flops'] / 1e6:.1f}",
                m["output_stride"],
                f"{m['score_map_side']}x{m['score_map_side']}",
                m["receptive_field"],
                f"{m['miou']:.4f}",
                f"{m['pixel_acc']:.4f}",
            ]
            for name, m in measured.items()
        ],
    )
    score_map_side = measured[VARIANTS[0]]["score_map_side"]
    if score_map_side <= LARGEFOV_RATE:
        run.write(
            f"At {side}x{side} the stride-8 score map is {score_map_side}x"
            f"{score_map_side}, no wider than fc6's rate of {LARGEFOV_RATE}: "
            "all its taps but the centre one fall on padding, so the dilated fc6 acts as a "
            "1x1 convolution, and every variant's field already exceeds the "
            f"{side}-pixel image (DeepLab v3, arXiv:1706.05587, section 3.3, describes "
            "the same degeneration as the rate nears the map size). LargeFOV's rate was "
            "chosen for 321x321 crops, whose score map is 41x41."
        )


def _plot_shapes(run: ExperimentRun, measured: dict[str, dict[str, Any]], side: int) -> None:
    from matplotlib.figure import Figure

    names = list(measured)
    fig = Figure(figsize=(9, 3.2))
    field_ax, miou_ax = fig.subplots(1, 2)
    colors = ["tab:green", "tab:red", "tab:gray"]
    field_ax.barh(names, [measured[n]["receptive_field"] for n in names], color=colors)
    field_ax.axvline(side, color="k", linestyle="--", label=f"image side ({side})")
    field_ax.legend(fontsize=8, loc="lower right")
    field_ax.set_xlabel("receptive field of a score (pixels)")
    field_ax.invert_yaxis()
    miou_ax.barh(names, [measured[n]["miou"] for n in names], color=colors)
    miou_ax.set_xlabel("test mIoU")
    miou_ax.set_yticks([])
    miou_ax.invert_yaxis()
    run.save_figure(fig, "deeplab_dilation.png", "DeepLab-v1 variants on shapes: field and mIoU")
