"""Small kernels: stacked 3x3 convolutions against one 5x5 or 7x7.

Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", 2014, arXiv:1409.1556, section 2.3. Two stacked 3x3
convolutions see a 5x5 window and three see 7x7, yet with C channels in and
out they hold 18 C^2 and 27 C^2 weights against 25 C^2 and 49 C^2 for the
single large kernel, and put a ReLU between each pair: "this makes the
decision function more discriminative". The survey gives this as the reason
VGG and everything after it use 3x3 kernels.

The experiment measures the receptive fields with
:mod:`cnnzoo.analysis.receptive_field` (and checks them against the gradient
of a centre unit), counts the weights with
:mod:`cnnzoo.analysis.survey_arithmetic`, and trains the same small network
four times -- each stage two 3x3, one 5x5, three 3x3 or one 7x7 convolutions,
with the same channels -- on handwritten digits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from cnnzoo.analysis.receptive_field import receptive_fields, verify_receptive_field
from cnnzoo.analysis.survey_arithmetic import survey_table
from cnnzoo.data import DataSplits, load_data, plain_request
from cnnzoo.experiments.base import ExperimentRun, describe_budget, register_experiment
from cnnzoo.experiments.training import train_network
from cnnzoo.measure.flops import count_flops, parameter_count
from cnnzoo.runs.config import TrainConfig
from cnnzoo.runs.plan import data_input

# Each stage of the trained networks: a stack of kernels, small against large with equal field.
STACKS: dict[str, tuple[int, ...]] = {
    "2 x 3x3": (3, 3),
    "1 x 5x5": (5,),
    "3 x 3x3": (3, 3, 3),
    "1 x 7x7": (7,),
}
PAIRS = (("2 x 3x3", "1 x 5x5"), ("3 x 3x3", "1 x 7x7"))

# Channels of every convolution (the survey's C); the counts table uses VGG's first width.
CHANNELS = {"quick": 8, "full": 16}
TABLE_CHANNELS = 64
# Quick: the 8x8 digits, a few steps. Full: the 28x28 MNIST sample, a few seeds.
DATA = {"quick": ("digits", 8), "full": ("mnist5k", 28)}
RECIPE = {"quick": dict(iterations=30, batch_size=32), "full": dict(epochs=3, batch_size=64)}
SEEDS = {"quick": 1, "full": 3}


class KernelStackNet(nn.Module):
    """A 3x3 stem, then two stages of one kernel stack (conv-BN-ReLU each) with 2x2
    max-pooling after each, global average pooling and a linear classifier.

    The stem (the same in every variant) takes the image to ``channels``, so every
    stack maps C channels to C, as in the survey's count; with "same" padding the
    variants differ only in how each stage reaches its field: one large kernel or
    several 3x3 with a ReLU between them.
    """

    def __init__(
        self, kernels: Sequence[int], channels: int, in_channels: int, num_classes: int
    ) -> None:
        super().__init__()
        layers = _conv_bn_relu(in_channels, channels, 3)
        for _stage in range(2):
            for kernel in kernels:
                layers += _conv_bn_relu(channels, channels, kernel)
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


def _conv_bn_relu(in_channels: int, out_channels: int, kernel: int) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


def _conv_stack(kernels: Sequence[int], channels: int) -> nn.Sequential:
    """The bare stack (no bias, normalisation or pooling) whose field the gradient check reads."""
    layers: list[nn.Module] = []
    for kernel in kernels:
        layers += [nn.Conv2d(channels, channels, kernel, padding=kernel // 2), nn.ReLU()]
    return nn.Sequential(*layers)


@register_experiment(
    "small-kernels",
    title="Small kernels: stacked 3x3 convolutions against one 5x5 or 7x7",
    claim="Two (three) stacked 3x3 convolutions see the same 5x5 (7x7) window as one large "
    "kernel with 18C^2 (27C^2) instead of 25C^2 (49C^2) weights, and train at least as well.",
    takes_data=True,
)
def small_kernels(run: ExperimentRun) -> None:
    mode = run.mode
    _kernel_arithmetic(run)
    _field_by_gradient(run)
    _train_networks(run, mode)


def _kernel_arithmetic(run: ExperimentRun) -> None:
    rows, pairs = [], []
    for small, large in survey_table(TABLE_CHANNELS)[:2]:
        pairs.append({"small": vars(small), "large": vars(large)})
        for cost in (small, large):
            rows.append(
                [
                    cost.description,
                    f"{cost.receptive_field}x{cost.receptive_field}",
                    cost.weights,
                    f"{cost.weights_per_channel_squared:g} C^2",
                ]
            )
    run.results["arithmetic"] = {"channels": TABLE_CHANNELS, "pairs": pairs}
    run.write(
        f"**Receptive field and weights.** Stacks of C = {TABLE_CHANNELS} channels in and out, "
        "built as `nn.Conv2d` layers and measured by `cnnzoo.analysis.receptive_field` "
        "(weights without biases, as in the survey's count)."
    )
    run.table(["stack", "receptive field", "weights", "weights / C^2"], rows)
    small5, large5 = survey_table(TABLE_CHANNELS)[0]
    small7, large7 = survey_table(TABLE_CHANNELS)[1]
    run.check(
        "two 3x3 see as far as one 5x5, three 3x3 as far as one 7x7",
        small5.receptive_field == large5.receptive_field == 5
        and small7.receptive_field == large7.receptive_field == 7,
        f"{small5.receptive_field} = {large5.receptive_field}, "
        f"{small7.receptive_field} = {large7.receptive_field}",
    )
    run.check(
        "the stacks hold 18C^2 and 27C^2 weights against 25C^2 and 49C^2",
        [c.weights_per_channel_squared for c in (small5, large5, small7, large7)]
        == [18, 25, 27, 49],
    )


def _field_by_gradient(run: ExperimentRun) -> None:
    """The analytic field agrees with the input pixels a centre unit's gradient reaches."""
    channels, side = 2, 17
    agreed = {}
    for name, kernels in STACKS.items():
        stack = _conv_stack(kernels, channels)
        (check,) = verify_receptive_field(stack, (channels, side, side))
        agreed[name] = (check.agrees, check.gradient_size)
    run.results["gradient_fields"] = {k: list(v[1]) for k, v in agreed.items()}
    run.check(
        "the gradient of a centre unit reaches exactly the analytic field of each stack",
        all(ok for ok, _ in agreed.values()),
        ", ".join(f"{k}: {size[0]}x{size[1]}" for k, (_, size) in agreed.items()),
    )


def _train_networks(run: ExperimentRun, mode: str) -> None:
    data_name, side = DATA[mode]
    channels = CHANNELS[mode]
    if run.data_source is None:
        request = plain_request(image_size=(side, side), in_channels=1, seed=run.seed)
    else:  # the chosen data at its own size and channels
        data_name = run.data_source
        request = plain_request(image_size=None, in_channels=None, seed=run.seed)
    data = load_data(data_name, request)
    num_classes = len(data.class_names)
    input_shape = (1, side, side)
    if run.data_source is not None:
        in_channels, (height, width) = data_input(data)
        input_shape, side = (in_channels, height, width), height
    networks = {
        name: _train_and_measure(run, kernels, data, input_shape)
        for name, kernels in run.progress(STACKS.items(), "training")
    }
    run.results["training"] = {
        "data": data_name,
        "image_size": side,
        "channels": channels,
        "recipe": RECIPE[mode],
        "seeds": SEEDS[mode],
        "networks": networks,
    }
    _report_training(run, networks, data_name, input_shape)
    _plot(run, networks)
    _check_trained(run, networks, channels, num_classes)


def _train_and_measure(
    run: ExperimentRun, kernels: Sequence[int], data: DataSplits, shape: tuple[int, int, int]
) -> dict[str, Any]:
    """One stage design trained once per seed: its field, weights, FLOPs and accuracies."""
    accuracies = []
    for seed_offset in range(SEEDS[run.mode]):
        seed = run.seed + seed_offset
        torch.manual_seed(seed)
        model = KernelStackNet(kernels, CHANNELS[run.mode], shape[0], len(data.class_names))
        config = TrainConfig(lr=0.05, seed=seed, augment="none", **run.recipe(RECIPE[run.mode]))
        accuracies.append(train_network(model, data, config)["top1"])
    fields = receptive_fields(model.features, shape)
    return {
        "params": parameter_count(model),
        # Weights of the two stacks, i.e. every convolution after the shared stem.
        "stack_weights": sum(m.weight.numel() for m in model.features if isinstance(m, nn.Conv2d))
        - model.features[0].weight.numel(),
        "flops": count_flops(model, shape).total,
        "receptive_field": int(fields[next(reversed(fields))].size[0]),
        "test_accuracy": accuracies,
        "mean_accuracy": sum(accuracies) / len(accuracies),
    }


def _report_training(
    run: ExperimentRun,
    networks: dict[str, dict[str, Any]],
    data_name: str,
    shape: tuple[int, int, int],
) -> None:
    channels = CHANNELS[run.mode]
    in_channels, height, width = shape
    colour = "grey" if in_channels == 1 else f"{in_channels} channels"
    budget = run.recipe(RECIPE[run.mode])
    budget = {
        key: budget[key]
        for key in ("epochs", "iterations", "batch_size", "train_fraction")
        if key in budget
    }
    run.write(
        f"**Training.** The same network four times on `{data_name}` ({height}x{width}, {colour}): "
        f"a 3x3 stem to {channels} channels, then two stages, each the kernel stack below "
        f"({channels} channels in and out, batch norm and ReLU after every convolution) "
        "followed by 2x2 max-pooling, then global average pooling and a linear classifier. "
        f"SGD lr 0.05 (cosine), weight decay 5e-4, {describe_budget(budget)}, no "
        f"augmentation; {SEEDS[run.mode]} seed(s) from {run.seed}, test accuracy of the last "
        "weights. FLOPs = 2 x multiply-accumulates per image."
    )
    run.table(
        [
            "stage",
            "field after both stages",
            "stack weights",
            "params",
            "MFLOPs",
            "test accuracy (per seed)",
        ],
        [
            [
                name,
                f"{n['receptive_field']}x{n['receptive_field']}",
                n["stack_weights"],
                n["params"],
                f"{n['flops'] / 1e6:.2f}",
                f"{n['mean_accuracy']:.4f} ("
                + ", ".join(f"{a:.4f}" for a in n["test_accuracy"])
                + ")",
            ]
            for name, n in networks.items()
        ],
    )


def _check_trained(
    run: ExperimentRun, networks: dict[str, dict[str, Any]], channels: int, num_classes: int
) -> None:
    """The trained networks keep the arithmetic's promises; the survey's accuracy claim."""
    run.check(
        "in the trained networks each 3x3 stack sees as far as its large kernel",
        all(
            networks[small]["receptive_field"] == networks[large]["receptive_field"]
            for small, large in PAIRS
        ),
    )
    run.check(
        "in the trained networks the stacks hold 2 x 18C^2, 2 x 25C^2, 2 x 27C^2, 2 x 49C^2 "
        "weights and each 3x3 stack costs fewer FLOPs than its large kernel",
        [networks[name]["stack_weights"] / channels**2 for name in STACKS] == [36, 50, 54, 98]
        and all(networks[small]["flops"] < networks[large]["flops"] for small, large in PAIRS),
    )
    chance = 1 / num_classes
    run.check(
        "every network learned (test accuracy above twice chance)",
        all(n["mean_accuracy"] > 2 * chance for n in networks.values()),
    )
    for small, large in PAIRS:
        gap = networks[small]["mean_accuracy"] - networks[large]["mean_accuracy"]
        run.finding(
            f"{small} is at least as accurate as {large}",
            gap >= 0,
            f"{networks[small]['mean_accuracy']:.4f} vs {networks[large]['mean_accuracy']:.4f}, "
            f"{gap * 100:+.2f} points",
        )


def _plot(run: ExperimentRun, networks: dict[str, dict[str, Any]]) -> None:
    from matplotlib.figure import Figure

    names = list(networks)
    colors = ["tab:blue", "tab:orange", "tab:blue", "tab:orange"]
    fig = Figure(figsize=(8, 3.2))
    (weights_ax, accuracy_ax) = fig.subplots(1, 2)
    weights_ax.bar(names, [networks[n]["stack_weights"] for n in names], color=colors)
    weights_ax.set_ylabel("weights of the two stacks")
    weights_ax.set_title("weights (same field in each pair)")
    for index, name in enumerate(names):
        accuracies = networks[name]["test_accuracy"]
        accuracy_ax.scatter([index] * len(accuracies), accuracies, color=colors[index])
        accuracy_ax.hlines(networks[name]["mean_accuracy"], index - 0.3, index + 0.3, "k")
    accuracy_ax.set_xticks(range(len(names)), names)
    accuracy_ax.set_ylabel("test accuracy")
    accuracy_ax.set_title("accuracy (dots: seeds, bar: mean)")
    for ax in (weights_ax, accuracy_ax):
        ax.tick_params(axis="x", labelsize=8)
    run.save_figure(fig, "small_kernels.png", "Weights and test accuracy of each stack")
