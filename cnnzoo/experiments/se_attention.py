"""Squeeze-and-excitation: channel attention for a few parameters and almost no computation.

Hu, Shen, Sun, "Squeeze-and-Excitation Networks", 2017, arXiv:1709.01507.
An SE block squeezes each channel of a residual branch to one number, passes
the numbers through a bottleneck (reduction 16) and rescales every channel by
its sigmoid gate. The paper reports (Table 2 and section 4) that on
ResNet-50 it adds about 10% parameters (25.6M -> 28.1M) and under 1%
computation while cutting the top-1 error, and (section 6.4, Fig. 6) that
early blocks excite channels alike for every class while later ones become
class-specific.

This experiment counts the overhead exactly (ResNet-50 at 224x224 and the
CIFAR ResNet-20 at 32x32, with the paper's average squeeze and with the
survey's learned whole-map ``squeeze="conv"``), trains ResNet-20 with and
without SE blocks on the offline digits on one budget (or on the data ``--data``
names, at 32x32), and reads the learned channel gates of every SE block for the
test images of each class.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from cnnzoo.data.batches import iterate_batches
from cnnzoo.experiments.base import ExperimentRun, register_experiment
from cnnzoo.experiments.registered_training import (
    TrainedNetwork,
    load_experiment_data,
    train_registered,
    trained_on,
)
from cnnzoo.measure.flops import count_flops, parameter_count
from cnnzoo.measure.modes import evaluating
from cnnzoo.models.layers import SqueezeExcite
from cnnzoo.models.registry import create_model

# (label, registered network, constructor options) of the networks compared.
VARIANTS = (
    ("ResNet-20", "resnet20", {}),
    ("SE-ResNet-20 (avg squeeze)", "se_resnet20", {}),
    ("SE-ResNet-20 (conv squeeze)", "se_resnet20", {"squeeze": "conv"}),
)
IMAGENET_PAIR = ("resnet50", "se_resnet50")
# One recipe for every network: the digits at their native 8x8, as in the degradation run.
RECIPE = {"data": "digits", "image_size": 8, "batch_size": 64, "lr": 0.05}
FULL_EPOCHS = 12
QUICK_ITERATIONS = 3
# Seeds per network: on 359 test digits one image is 0.28 points, about the gap SE is
# expected to close, so the full run averages three.
SEEDS = {"quick": 1, "full": 3}
CLASSES_SHOWN = (0, 1, 4, 7)  # digits whose mean gates the figure draws


def _cost(
    name: str, options: dict[str, Any], input_shape: tuple[int, int, int], num_classes: int
) -> dict[str, int]:
    """Parameters and FLOPs of ``name`` on one image, counted from shapes on the meta device."""
    with torch.device("meta"):
        model = create_model(name, num_classes=num_classes, **options)
    return {"params": parameter_count(model), "flops": count_flops(model, input_shape).total}


def gates_by_class(model: nn.Module, images: Tensor, targets: Tensor) -> dict[str, Tensor]:
    """Mean excitation of every SE block, per class: {block name: (classes, channels)}.

    A forward hook on each block's gate (the sigmoid) captures the per-image,
    per-channel weights; they are averaged over the images of each class.
    """
    blocks = {name: m for name, m in model.named_modules() if isinstance(m, SqueezeExcite)}
    captured: dict[str, list[Tensor]] = {name: [] for name in blocks}
    handles = [
        block.gate.register_forward_hook(
            lambda gate, inputs, output, name=name: captured[name].append(output.flatten(1))
        )
        for name, block in blocks.items()
    ]
    try:
        with torch.no_grad(), evaluating(model):
            for start in range(0, len(images), 256):
                model(images[start : start + 256])
    finally:
        for handle in handles:
            handle.remove()
    classes = sorted(int(c) for c in targets.unique())
    means = {}
    for name, batches in captured.items():
        gates = torch.cat(batches)
        means[name] = torch.stack([gates[targets == c].mean(dim=0) for c in classes])
    return means


def class_specificity(class_means: Tensor) -> float:
    """How much a block's gates differ between classes: the std over classes, mean over channels."""
    return float(class_means.std(dim=0).mean())


@register_experiment(
    "se-attention",
    title="Squeeze-and-excitation: accuracy, overhead and learned channel weights",
    claim="SE blocks add under 2% parameters (CIFAR ResNet; ~10% on ResNet-50) and under 1% "
    "FLOPs, improve accuracy, and learn channel weights that grow class-specific with depth.",
    takes_data=True,
)
def se_attention(run: ExperimentRun) -> None:
    cifar_costs = {
        label: _cost(name, options, (3, 32, 32), num_classes=10)
        for label, name, options in VARIANTS
    }
    imagenet = _imagenet_overhead()
    seeds = [run.seed + offset for offset in range(SEEDS[run.mode])]
    trained = _train_variants(run, seeds)
    rows = _record_costs_and_errors(run, cifar_costs, trained)
    run.results["imagenet"] = imagenet
    se_network = trained[VARIANTS[1][0]][0]
    _report_costs(run, seeds, rows, se_network)
    gates, classes = _learned_gates(run, se_network.model, seeds[0])
    _check_overheads_and_gates(run, gates, se_network.model, classes)
    _compare_with_resnet(run, gates)


def _train_variants(run: ExperimentRun, seeds: list[int]) -> dict[str, list[TrainedNetwork]]:
    """Each network of ``VARIANTS`` trained once per seed, on one recipe and budget."""
    budget: dict[str, Any] = (
        {"iterations": QUICK_ITERATIONS, "batch_size": 32} if run.quick else {"epochs": FULL_EPOCHS}
    )
    return {
        label: [
            train_registered(
                name, run.recipe({**RECIPE, **budget, "model_options": options, "seed": seed})
            )
            for seed in seeds
        ]
        for label, name, options in run.progress(VARIANTS, "training")
    }


def _record_costs_and_errors(
    run: ExperimentRun,
    cifar_costs: dict[str, dict[str, int]],
    trained: dict[str, list[TrainedNetwork]],
) -> list[list[Any]]:
    """Each variant's overhead over ResNet-20 at 32x32 and its errors; the table's rows."""
    base = cifar_costs[VARIANTS[0][0]]
    rows = []
    for label, name, _ in VARIANTS:
        cost, networks = cifar_costs[label], trained[label]
        test_errors = [network.test_error for network in networks]
        run.results[label] = entry = {
            "network": name,
            "params": cost["params"],
            "flops": cost["flops"],
            "param_overhead": cost["params"] / base["params"] - 1,
            "flop_overhead": cost["flops"] / base["flops"] - 1,
            "test_errors": test_errors,
            "test_error": sum(test_errors) / len(test_errors),
            "final_train_error": sum(1 - n.history[-1]["train_top1"] for n in networks)
            / len(networks),
        }
        rows.append(
            [
                label,
                cost["params"],
                f"{100 * entry['param_overhead']:+.2f}%",
                f"{cost['flops'] / 1e6:.2f}",
                f"{100 * entry['flop_overhead']:+.3f}%",
                f"{100 * entry['final_train_error']:.1f}",
                f"{100 * entry['test_error']:.2f}",
                " / ".join(f"{100 * error:.1f}" for error in test_errors),
            ]
        )
    return rows


def _imagenet_overhead() -> dict[str, Any]:
    """ResNet-50 against SE-ResNet-50 at 224x224, the paper's own comparison."""
    imagenet_costs = {
        name: _cost(name, {}, (3, 224, 224), num_classes=1000) for name in IMAGENET_PAIR
    }
    resnet50, se_resnet50 = (imagenet_costs[name] for name in IMAGENET_PAIR)
    return {
        **imagenet_costs,
        "param_overhead": se_resnet50["params"] / resnet50["params"] - 1,
        "flop_overhead": se_resnet50["flops"] / resnet50["flops"] - 1,
    }


def _report_costs(
    run: ExperimentRun, seeds: list[int], rows: list[list[Any]], network: TrainedNetwork
) -> None:
    epochs = run.recipe({"epochs": FULL_EPOCHS})["epochs"]
    budget_text = (
        f"{QUICK_ITERATIONS} steps of 32 images (quick run)"
        if run.quick
        else f"{epochs} epochs of batch {RECIPE['batch_size']}"
    )
    resolution = " One test image is 0.28 points of test error." if run.data_source is None else ""
    run.write(
        "Parameters and FLOPs (2 x multiply-accumulates, convolutions and matrix products; "
        "the SE rescaling itself is an element-wise product and is not counted, as in the "
        "paper) for 10 classes at the CIFAR input 3x32x32, where the conv squeeze's kernels "
        "are sized. Errors: trained on "
        f"{trained_on(run, network, 'the digits at 8x8 (1 channel)')} for "
        f"{budget_text}, SGD lr {RECIPE['lr']} (cosine), weight decay 5e-4, no augmentation, "
        f"seeds {', '.join(map(str, seeds))}; errors are means over the seeds.{resolution}"
    )
    run.table(
        [
            "network",
            "params",
            "param overhead",
            "MFLOPs at 32x32",
            "FLOP overhead",
            "train error %",
            "test error %",
            "test error % per seed",
        ],
        rows,
    )
    imagenet = run.results["imagenet"]
    resnet50, se_resnet50 = (imagenet[name] for name in IMAGENET_PAIR)
    run.write(
        f"At ImageNet scale (224x224, 1000 classes): ResNet-50 {resnet50['params']:,} "
        f"parameters and {resnet50['flops'] / 1e9:.2f} GFLOPs, SE-ResNet-50 "
        f"{se_resnet50['params']:,} and {se_resnet50['flops'] / 1e9:.2f} GFLOPs: "
        f"{100 * imagenet['param_overhead']:+.1f}% parameters, "
        f"{100 * imagenet['flop_overhead']:+.2f}% FLOPs (paper: 25.6M -> 28.1M parameters, "
        "3.86 -> 3.87 GMACs)."
    )


def _learned_gates(
    run: ExperimentRun, se_model: nn.Module, seed: int
) -> tuple[dict[str, Tensor], int]:
    """The trained SE network's mean gates per class on the test images (section 6.4), and
    the number of classes among those images."""
    own = (RECIPE["data"], RECIPE["image_size"], 1)
    data = load_experiment_data(run, VARIANTS[1][1], own, run.seed)
    images, targets = next(iterate_batches(data.test, len(data.test)))
    gates = gates_by_class(se_model, images, targets)
    specificity = {name: class_specificity(means) for name, means in gates.items()}
    run.results["gates"] = {
        name: {"class_means": means, "class_specificity": specificity[name]}
        for name, means in gates.items()
    }
    run.write(
        f"Learned gates of the SE-ResNet-20 (average squeeze) trained with seed {seed}, on "
        "the test images. "
        "*Class specificity*: the standard deviation over the "
        f"{'ten digits' if run.data_source is None else 'classes'} of each channel's "
        "mean gate, averaged over the channels; 0 means every class is weighted alike."
    )
    run.table(
        ["SE block", "channels", "mean gate", "class specificity"],
        [
            [name, means.shape[1], f"{float(means.mean()):.3f}", f"{specificity[name]:.4f}"]
            for name, means in gates.items()
        ],
    )
    _plot_gates(run, gates)
    return gates, len(targets.unique())


def _check_overheads_and_gates(
    run: ExperimentRun, gates: dict[str, Tensor], se_model: nn.Module, classes: int
) -> None:
    se_label, conv_label = VARIANTS[1][0], VARIANTS[2][0]
    imagenet = run.results["imagenet"]
    run.check(
        "SE blocks (average squeeze) add less than 2% parameters to the CIFAR ResNet-20",
        0 < run.results[se_label]["param_overhead"] < 0.02,
        f"{100 * run.results[se_label]['param_overhead']:.2f}%",
    )
    run.check(
        "SE blocks add less than 1% FLOPs, with either squeeze",
        all(0 < run.results[label]["flop_overhead"] < 0.01 for label in (se_label, conv_label)),
    )
    run.check(
        "SE-ResNet-50 has about 10% more parameters than ResNet-50 (paper: 28.1M vs 25.6M)",
        0.08 < imagenet["param_overhead"] < 0.12 and imagenet["flop_overhead"] < 0.01,
        f"{100 * imagenet['param_overhead']:.1f}% parameters, "
        f"{100 * imagenet['flop_overhead']:.2f}% FLOPs",
    )
    run.check(
        "one SE block per residual block (9 in ResNet-20), each with one gate per channel "
        "in [0, 1]",
        len(gates) == 9
        and all(
            means.shape == (classes, se_model.get_submodule(name).fc2.out_channels)
            for name, means in gates.items()
        )
        and all(bool(((means >= 0) & (means <= 1)).all()) for means in gates.values()),
    )


def _compare_with_resnet(run: ExperimentRun, gates: dict[str, Tensor]) -> None:
    """The paper's claims: better accuracy, and gates that grow class-specific with depth."""
    base_label, se_label = VARIANTS[0][0], VARIANTS[1][0]
    run.finding(
        "SE-ResNet-20 reaches lower mean test error than ResNet-20",
        run.results[se_label]["test_error"] < run.results[base_label]["test_error"],
        f"{100 * run.results[se_label]['test_error']:.1f}% vs "
        f"{100 * run.results[base_label]['test_error']:.1f}%",
    )
    specificity = {name: run.results["gates"][name]["class_specificity"] for name in gates}
    names = list(gates)
    early, late = names[0], names[-1]
    run.finding(
        "the gates of the last SE block are more class-specific than those of the first",
        specificity[late] > specificity[early],
        f"{late}: {specificity[late]:.4f}, {early}: {specificity[early]:.4f}",
    )


def _plot_gates(run: ExperimentRun, gates: dict[str, Tensor]) -> None:
    from matplotlib.figure import Figure

    shown = [name for name in gates if name.split(".")[1] == "2"]  # last block of each stage
    classes = next(iter(gates.values())).shape[0]
    own_data = run.data_source is None
    drawn = CLASSES_SHOWN if own_data else tuple(range(min(classes, len(CLASSES_SHOWN))))
    fig = Figure(figsize=(4 * len(shown), 3.2))
    axes = fig.subplots(1, len(shown), sharey=True)
    for ax, name in zip(axes, shown):
        for index in drawn:
            label = f"digit {index}" if own_data else f"class {index}"
            ax.plot(gates[name][index].numpy(), marker=".", linewidth=1, label=label)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("channel")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("mean excitation (gate)")
    axes[-1].legend(fontsize="small")
    run.save_figure(
        fig,
        "se_gates.png",
        f"Mean SE gate of every channel, per {'digit' if own_data else 'class'}, in the last "
        "block of each stage",
    )
