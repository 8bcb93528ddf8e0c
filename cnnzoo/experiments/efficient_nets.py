"""Efficient networks: MobileNet and EfficientNet against VGG and ResNet in accuracy, FLOPs, time.

* Howard et al., "MobileNets", 2017, arXiv:1704.04861, section 3.1: a k x k
  convolution from M to N channels on an F x F map costs k^2 M N F^2
  multiply-adds; a depthwise k x k convolution followed by a pointwise 1x1
  costs k^2 M F^2 + M N F^2, a fraction 1/N + 1/k^2 of it -- 8 to 9 times
  less for 3x3 kernels. Table 4: the same network with standard convolutions
  ("Conv MobileNet") costs 4866M multiply-adds against MobileNet's 569M.
* Sandler et al., "MobileNetV2", 2018, arXiv:1801.04381 (300M multiply-adds);
  Howard et al., "Searching for MobileNetV3", 2019, arXiv:1905.02244 (219M);
  Tan & Le, "EfficientNet", 2019, arXiv:1905.11946 (B0: 0.39B) -- against
  ResNet-18/50 (He et al. 2015: 1.8G and 3.8G) and VGG-16 (15.3G, as He et
  al. Table 3 count it).

The survey presents these as the answer to model size: similar accuracy at a
fraction of the computation. This experiment counts every network's
multiply-adds at 224x224 against the papers' figures, checks MobileNet's
cost ratio layer by layer, times one image on this CPU, and trains the
smaller networks on the digits on one budget to place accuracy against
FLOPs and latency.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch
from torch import nn

from cnnzoo.experiments.base import ExperimentRun, register_experiment
from cnnzoo.experiments.registered_training import train_registered, trained_on
from cnnzoo.measure.flops import count_flops, parameter_count
from cnnzoo.models.classification.mobilenet import V1_LAYERS, DepthwiseSeparable
from cnnzoo.models.registry import create_model

# Multiply-adds at 224x224 that each paper reports, in millions (sources in the docstring).
PAPER_MACS = {
    "vgg16": 15_300,
    "resnet50": 3_800,
    "resnet18": 1_800,
    "mobilenet_v1": 569,
    "efficientnet_b0": 390,
    "mobilenet_v2": 300,
    "mobilenet_v3_large": 219,
}
CONV_MOBILENET_MACS = 4_866  # MobileNet v1 with standard convolutions, Table 4
MACS_TOLERANCE = 0.10  # torchvision's ResNet-50 strides the 3x3 (v1.5): 4.1G, not 3.8G
# Trained on the digits; VGG-16 is left out: at 32x32 one epoch costs it about as much
# as all the others together take for the whole run on two cores.
TRAINED = {
    "quick": ("resnet18", "mobilenet_v2"),
    "full": ("resnet18", "mobilenet_v1", "mobilenet_v2", "efficientnet_b0"),
}
TRAIN_SIZE = 32  # the smallest input every one of these networks accepts (stride 32)
RECIPE = {"data": "digits", "image_size": TRAIN_SIZE, "batch_size": 64, "lr": 0.05}
FULL_EPOCHS = 4
QUICK_ITERATIONS = 2
LATENCY_REPEATS = {"quick": 3, "full": 7}


def _macs_at(name: str, input_shape: tuple[int, int, int], num_classes: int) -> tuple[int, int]:
    """(multiply-adds, parameters) of ``name`` on one image, from shapes on the meta device."""
    with torch.device("meta"):
        model = create_model(name, num_classes=num_classes, in_channels=input_shape[0])
    macs = count_flops(model, input_shape).total // 2
    return macs, parameter_count(model)


def latency_ms(model: nn.Module, input_shape: tuple[int, ...], repeats: int) -> float:
    """Median wall time of one forward pass of a single image, in milliseconds."""
    model.eval()
    image = torch.randn(1, *input_shape)
    times = []
    with torch.inference_mode():
        model(image)  # the first pass allocates and picks kernels: not timed
        for _ in range(repeats):
            start = time.perf_counter()
            model(image)
            times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def separable_cost_ratios(input_side: int = 224) -> list[dict[str, Any]]:
    """MobileNet v1's separable layers against standard 3x3 convolutions, counted and predicted.

    Each layer of Table 1 is built both ways at the map size it sees (the stem
    halves the input) and counted; the prediction is 1/N + 1/k^2 (section 3.1).
    """
    rows, channels, side = [], 32, input_side // 2
    for out_channels, stride in V1_LAYERS:
        with torch.device("meta"):
            standard = nn.Conv2d(channels, out_channels, 3, stride, padding=1, bias=False)
            separable = DepthwiseSeparable(channels, out_channels, stride)
        standard_flops = count_flops(standard, (channels, side, side)).total
        separable_flops = count_flops(separable, (channels, side, side)).total
        rows.append(
            {
                "in": channels,
                "out": out_channels,
                "map": side,
                "standard_macs": standard_flops // 2,
                "separable_macs": separable_flops // 2,
                "counted_ratio": separable_flops / standard_flops,
                "predicted_ratio": 1 / out_channels + 1 / 3**2,
            }
        )
        channels, side = out_channels, -(-side // stride)
    return rows


@register_experiment(
    "efficient-nets",
    title="Efficient networks: accuracy against FLOPs and latency",
    claim="MobileNet and EfficientNet need a small fraction of VGG's and ResNet's computation "
    "(depthwise separable convolutions cost 1/N + 1/k^2 of a standard one) at similar accuracy.",
    takes_data=True,
)
def efficient_nets(run: ExperimentRun) -> None:
    imagenet = _count_at_imagenet_size(run)
    layers, conv_mobilenet_macs = _separable_against_standard(run, imagenet)
    digits = _train_on_digits(run)
    _plot(run, digits)
    _check_counts(run, imagenet, layers, conv_mobilenet_macs, digits)
    _compare_with_resnet18(run, digits)


def _count_at_imagenet_size(run: ExperimentRun) -> dict[str, dict[str, Any]]:
    """Every network's MACs and parameters at 224x224 beside its paper's figure; the full
    run also times one image through each."""
    mode = run.mode
    imagenet: dict[str, dict[str, Any]] = {}
    for name, paper_macs in PAPER_MACS.items():
        macs, params = _macs_at(name, (3, 224, 224), num_classes=1000)
        imagenet[name] = {"macs": macs, "params": params, "paper_macs": paper_macs * 1e6}
    if not run.quick:
        for name in run.progress(PAPER_MACS, "timing at 224x224"):
            torch.manual_seed(run.seed)
            model = create_model(name, num_classes=1000)
            imagenet[name]["latency_ms"] = latency_ms(model, (3, 224, 224), LATENCY_REPEATS[mode])
    run.results["imagenet_224"] = imagenet

    run.write(
        "Multiply-accumulates (MACs, what the papers call FLOPs; cnnzoo's FLOPs are twice "
        "these) of one 224x224 image with 1000 classes, counted by `torch.utils.flop_counter` "
        "on shapes alone, against each paper's figure"
        + (
            "; latency: median of "
            f"{LATENCY_REPEATS[mode]} forward passes of one image on this CPU "
            f"({torch.get_num_threads()} thread(s); timings vary with the machine's load)."
            if not run.quick
            else "."
        )
    )
    header = ["network", "params", "MMACs counted", "MMACs paper", "x MobileNet v2"]
    if not run.quick:
        header.append("latency ms")
    base_macs = imagenet["mobilenet_v2"]["macs"]
    table = []
    for name, entry in imagenet.items():
        row = [
            name,
            entry["params"],
            f"{entry['macs'] / 1e6:.0f}",
            f"{entry['paper_macs'] / 1e6:.0f}",
            f"{entry['macs'] / base_macs:.1f}",
        ]
        if not run.quick:
            row.append(f"{entry['latency_ms']:.0f}")
        table.append(row)
    run.table(header, table)
    return imagenet


def _separable_against_standard(
    run: ExperimentRun, imagenet: dict[str, dict[str, Any]]
) -> tuple[list[dict[str, Any]], int]:
    """MobileNet v1's separable layers against standard ones, and what the whole network
    would cost with standard convolutions (Table 4's "Conv MobileNet")."""
    layers = separable_cost_ratios()
    v1_macs = imagenet["mobilenet_v1"]["macs"]
    conv_mobilenet_macs = v1_macs + sum(r["standard_macs"] - r["separable_macs"] for r in layers)
    run.results["separable_layers"] = layers
    run.results["conv_mobilenet_macs"] = conv_mobilenet_macs
    run.write(
        "MobileNet v1's 13 depthwise separable layers (Table 1) against standard 3x3 "
        "convolutions with the same channels, counted at the map each sees, beside the "
        "predicted 1/N + 1/k^2 (section 3.1):"
    )
    run.table(
        ["in M", "out N", "map", "standard MMACs", "separable MMACs", "counted", "1/N + 1/9"],
        [
            [
                r["in"],
                r["out"],
                f"{r['map']}x{r['map']}",
                f"{r['standard_macs'] / 1e6:.1f}",
                f"{r['separable_macs'] / 1e6:.1f}",
                f"{r['counted_ratio']:.4f}",
                f"{r['predicted_ratio']:.4f}",
            ]
            for r in layers
        ],
    )
    run.write(
        f"With standard convolutions MobileNet v1 would cost {conv_mobilenet_macs / 1e6:,.0f}M "
        f"MACs instead of {v1_macs / 1e6:,.0f}M ({conv_mobilenet_macs / v1_macs:.1f}x; paper "
        f"Table 4: {CONV_MOBILENET_MACS:,}M against 569M)."
    )
    return layers, conv_mobilenet_macs


def _train_on_digits(run: ExperimentRun) -> dict[str, dict[str, Any]]:
    """The smaller networks trained on one budget: test error beside MACs and latency."""
    mode = run.mode
    budget: dict[str, Any] = (
        {"iterations": QUICK_ITERATIONS, "batch_size": 16} if run.quick else {"epochs": FULL_EPOCHS}
    )
    digits: dict[str, dict[str, Any]] = {}
    for name in run.progress(TRAINED[mode], "training"):
        # Chosen data is read at TRAIN_SIZE too, not the ImageNet networks' paper 224x224.
        recipe = {**run.recipe({**RECIPE, **budget, "seed": run.seed}), "image_size": TRAIN_SIZE}
        trained = train_registered(name, recipe)
        shape = (trained.in_channels, TRAIN_SIZE, TRAIN_SIZE)
        macs, params = _macs_at(name, shape, num_classes=10)
        digits[name] = {
            "macs": macs,
            "params": params,
            "latency_ms": latency_ms(trained.model, shape, LATENCY_REPEATS[mode]),
            "train_error": [1 - row["train_top1"] for row in trained.history],
            "test_error": trained.test_error,
            "train_seconds": trained.metrics["train_seconds"],
        }
    run.results["digits"] = digits
    epochs = run.recipe({"epochs": FULL_EPOCHS})["epochs"]
    budget_text = (
        f"{QUICK_ITERATIONS} steps of 16 images (quick run)"
        if run.quick
        else f"{epochs} epochs of batch {RECIPE['batch_size']}"
    )
    own_data = f"the digits upsampled to {TRAIN_SIZE}x{TRAIN_SIZE} (1 channel, 10 classes)"
    data_text = trained_on(run, trained, own_data)
    if run.data_source is not None:
        data_text += (
            f" (the ImageNet networks at {TRAIN_SIZE}x{TRAIN_SIZE}, their smallest input, "
            "not their paper 224x224)"
        )
    run.write(
        f"Trained on {data_text} "
        f"for {budget_text}, SGD lr {RECIPE['lr']} (cosine), weight decay 5e-4, no "
        f"augmentation, seed {run.seed}; MACs and single-image latency at that input."
    )
    run.table(
        [
            "network",
            "params",
            f"MMACs at {TRAIN_SIZE}x{TRAIN_SIZE}",
            "latency ms",
            "train error % (last epoch)",
            "test error %",
            "train seconds",
        ],
        [
            [
                name,
                d["params"],
                f"{d['macs'] / 1e6:.1f}",
                f"{d['latency_ms']:.1f}",
                f"{100 * d['train_error'][-1]:.1f}",
                f"{100 * d['test_error']:.1f}",
                f"{d['train_seconds']:.0f}",
            ]
            for name, d in digits.items()
        ],
    )
    return digits


def _check_counts(
    run: ExperimentRun,
    imagenet: dict[str, dict[str, Any]],
    layers: list[dict[str, Any]],
    conv_mobilenet_macs: int,
    digits: dict[str, dict[str, Any]],
) -> None:
    order = sorted(imagenet, key=lambda name: imagenet[name]["macs"])
    paper_order = sorted(PAPER_MACS, key=PAPER_MACS.get)
    run.check(
        "the networks order by counted MACs as by the papers' figures",
        order == paper_order,
        " < ".join(order),
    )
    run.check(
        "MobileNet v2 needs less than a fiftieth of VGG-16's computation",
        imagenet["mobilenet_v2"]["macs"] * 50 < imagenet["vgg16"]["macs"],
        f"{imagenet['vgg16']['macs'] / imagenet['mobilenet_v2']['macs']:.0f}x",
    )
    off = {
        name: entry["macs"] / entry["paper_macs"] - 1
        for name, entry in imagenet.items()
        if abs(entry["macs"] / entry["paper_macs"] - 1) > MACS_TOLERANCE
    }
    run.check(
        f"every count is within {MACS_TOLERANCE:.0%} of its paper's figure",
        not off,
        ", ".join(f"{name} {100 * error:+.1f}%" for name, error in off.items()),
    )
    run.check(
        "each separable layer costs exactly 1/N + 1/k^2 of a standard convolution",
        all(abs(r["counted_ratio"] - r["predicted_ratio"]) < 1e-9 for r in layers),
    )
    run.check(
        "MobileNet v1 with standard convolutions costs Table 4's 4866M MACs (within 1%)",
        abs(conv_mobilenet_macs / (CONV_MOBILENET_MACS * 1e6) - 1) < 0.01,
        f"{conv_mobilenet_macs / 1e6:,.0f}M",
    )
    run.check(
        "every trained network's test error and latency are measured",
        all(0 <= d["test_error"] <= 1 and d["latency_ms"] > 0 for d in digits.values()),
    )


def _compare_with_resnet18(run: ExperimentRun, digits: dict[str, dict[str, Any]]) -> None:
    """The survey's claim: the efficient networks match ResNet-18 for less computation."""
    reference = digits["resnet18"]
    for name, entry in digits.items():
        if name == "resnet18":
            continue
        run.finding(
            f"{name} comes within 2 points of ResNet-18's test error at "
            f"{reference['macs'] / entry['macs']:.1f}x fewer MACs",
            entry["test_error"] <= reference["test_error"] + 0.02,
            f"{100 * entry['test_error']:.1f}% vs {100 * reference['test_error']:.1f}%",
        )
        run.finding(
            f"{name} runs one image faster than ResNet-18 on this CPU",
            entry["latency_ms"] < reference["latency_ms"],
            f"{entry['latency_ms']:.1f} ms vs {reference['latency_ms']:.1f} ms",
        )


def _plot(run: ExperimentRun, digits: dict[str, dict[str, Any]]) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.5))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, key, label in (
        (axes[0], "macs", f"MMACs per image at {TRAIN_SIZE}x{TRAIN_SIZE}"),
        (axes[1], "latency_ms", "latency of one image, ms"),
    ):
        for name, entry in digits.items():
            value = entry[key] / 1e6 if key == "macs" else entry[key]
            ax.scatter(value, 100 * entry["test_error"], s=30)
            ax.annotate(
                name,
                (value, 100 * entry["test_error"]),
                fontsize=8,
                xytext=(4, 4),
                textcoords="offset points",
            )
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"test error % ({run.data_source or 'digits'})")
    run.save_figure(fig, "accuracy_vs_cost.png", "Test error against computation and latency")
