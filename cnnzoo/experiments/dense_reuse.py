"""Feature reuse: DenseNet against ResNet at similar parameter counts.

Huang, Liu, van der Maaten, Weinberger, "Densely Connected Convolutional
Networks", 2016, arXiv:1608.06993. Every layer of a dense block receives the
concatenated maps of *all* earlier layers of the block and adds only k (the
growth rate) new ones, so features are reused instead of relearned and each
layer can stay narrow. Table 2: on CIFAR-10 with augmentation DenseNet
(k = 12, 40 layers, 1.0M parameters) reaches 5.24% error and DenseNet-BC
(k = 12, 100 layers, 0.8M) 4.51%, against 6.41% for ResNet-110 with 1.7M --
more accuracy per parameter. The survey presents this as dense connectivity's
answer to the cost of depth.

This experiment counts the networks' parameters and FLOPs at CIFAR's 32x32,
verifies that each dense layer reads every earlier map of its block, and
trains DenseNet-40, DenseNet-BC-100 and ResNet-56 (0.85M) on the offline
digits on one budget.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from cnnzoo.experiments.base import ExperimentRun, register_experiment
from cnnzoo.experiments.registered_training import TrainedNetwork, train_registered, trained_on
from cnnzoo.measure.flops import count_flops, parameter_count
from cnnzoo.measure.modes import evaluating
from cnnzoo.models.classification.densenet import DenseBlock, DenseLayer
from cnnzoo.models.registry import create_model

# Parameters in millions for CIFAR-10 as the papers give them (DenseNet Table 2; ResNet
# Table 6 of He et al. 2015).
PAPER_PARAMS = {"resnet56": 0.85, "densenet40_k12": 1.0, "densenet_bc100_k12": 0.8}
PARAMS_TOLERANCE = 0.06  # the papers round to two significant figures
RESIDUAL = "resnet56"
# Quick runs train only the closest pair in parameters (0.77M against 0.85M).
TRAINED = {
    "quick": ("resnet56", "densenet_bc100_k12"),
    "full": ("resnet56", "densenet40_k12", "densenet_bc100_k12"),
}
# One recipe for every network: the digits at their native 8x8, as in the degradation run.
RECIPE = {"data": "digits", "image_size": 8, "batch_size": 64, "lr": 0.05}
FULL_EPOCHS = 6
QUICK_ITERATIONS = 2


def _cost(name: str) -> dict[str, int]:
    """Parameters and FLOPs (2 x MACs) at CIFAR-10's 3x32x32, counted on the meta device."""
    with torch.device("meta"):
        model = create_model(name, num_classes=10)
    return {
        "params": parameter_count(model),
        "flops": count_flops(model, (3, 32, 32)).total,
    }


def dense_inputs(model: nn.Module, image: torch.Tensor) -> list[list[int]]:
    """For every dense block, the number of maps each of its layers received, in order.

    A forward hook on each :class:`DenseLayer` records the length of the list
    of earlier maps it is called with (the block input and every earlier
    layer's output).
    """
    received: list[list[int]] = []
    handles = []
    for block in (m for m in model.modules() if isinstance(m, DenseBlock)):
        counts: list[int] = []
        received.append(counts)
        for layer in block.layers:
            assert isinstance(layer, DenseLayer)
            handles.append(
                layer.register_forward_hook(
                    lambda module, inputs, output, counts=counts: counts.append(len(inputs[0]))
                )
            )
    try:
        with torch.no_grad(), evaluating(model):
            model(image)
    finally:
        for handle in handles:
            handle.remove()
    return received


@register_experiment(
    "dense-reuse",
    title="Dense connectivity: DenseNet against ResNet at similar parameter counts",
    claim="Reusing every earlier feature map lets DenseNet match or beat a ResNet of similar "
    "size: more accuracy per parameter.",
    takes_data=True,
)
def dense_reuse(run: ExperimentRun) -> None:
    costs = {name: _cost(name) for name in PAPER_PARAMS}
    trained = _train_on_digits(run)
    rows = _record_errors(run, costs, trained)
    _report(run, rows, next(iter(trained.values())))
    received = {
        name: dense_inputs(network.model, torch.zeros(1, network.in_channels, *network.image_size))
        for name, network in trained.items()
        if name != RESIDUAL
    }
    run.results["maps_received_per_layer"] = received
    _plot(run, trained)
    _check_counts_and_connections(run, costs, received, trained)
    _compare_with_resnet(run, costs, trained)


def _train_on_digits(run: ExperimentRun) -> dict[str, TrainedNetwork]:
    budget: dict[str, Any] = (
        {"iterations": QUICK_ITERATIONS, "batch_size": 16} if run.quick else {"epochs": FULL_EPOCHS}
    )
    return {
        name: train_registered(name, run.recipe({**RECIPE, **budget, "seed": run.seed}))
        for name in run.progress(TRAINED[run.mode], "training")
    }


def _record_errors(
    run: ExperimentRun, costs: dict[str, dict[str, int]], trained: dict[str, TrainedNetwork]
) -> list[list[Any]]:
    """Each network's counts, curves and test error in the results; the table's rows."""
    rows = []
    for name, network in trained.items():
        cost = costs[name]
        history = network.history
        run.results[name] = {
            **cost,
            "paper_params": PAPER_PARAMS[name] * 1e6,
            "digits_params": network.metrics["params"],
            "train_error": [1 - row["train_top1"] for row in history],
            "val_error": [1 - row["val_top1"] for row in history],
            "test_error": network.test_error,
            "train_seconds": network.metrics["train_seconds"],
        }
        rows.append(
            [
                name,
                cost["params"],
                f"{PAPER_PARAMS[name]}M",
                f"{cost['flops'] / 1e6:.0f}",
                f"{100 * (1 - history[-1]['train_top1']):.1f}",
                f"{100 * network.test_error:.1f}",
                f"{network.metrics['train_seconds']:.0f}",
            ]
        )
    return rows


def _report(run: ExperimentRun, rows: list[list[Any]], network: TrainedNetwork) -> None:
    epochs = run.recipe({"epochs": FULL_EPOCHS})["epochs"]
    budget_text = (
        f"{QUICK_ITERATIONS} steps of 16 images (quick run)"
        if run.quick
        else f"{epochs} epochs of batch {RECIPE['batch_size']}"
    )
    own_data = f"the digits at {RECIPE['image_size']}x{RECIPE['image_size']} (1 channel)"
    resolution = " One test image is 0.28 points of test error." if run.data_source is None else ""
    run.write(
        "Parameters and FLOPs (2 x multiply-accumulates) for CIFAR-10 (3x32x32, 10 classes); "
        f"errors after training on {trained_on(run, network, own_data)} for {budget_text}, "
        f"SGD lr {RECIPE['lr']} (cosine), weight decay 5e-4, no augmentation, seed {run.seed}; "
        f"wall time on this machine.{resolution}"
    )
    run.table(
        [
            "network",
            "params",
            "paper",
            "MFLOPs at 32x32",
            "train error %",
            "test error %",
            "train seconds",
        ],
        rows,
    )


def _check_counts_and_connections(
    run: ExperimentRun,
    costs: dict[str, dict[str, int]],
    received: dict[str, list[list[int]]],
    trained: dict[str, TrainedNetwork],
) -> None:
    off = {
        name: cost["params"] / (PAPER_PARAMS[name] * 1e6) - 1
        for name, cost in costs.items()
        if abs(cost["params"] / (PAPER_PARAMS[name] * 1e6) - 1) > PARAMS_TOLERANCE
    }
    run.check(
        f"parameter counts are the papers' (within {PARAMS_TOLERANCE:.0%})",
        not off,
        ", ".join(f"{name} {100 * error:+.1f}%" for name, error in off.items()),
    )
    run.check(
        "layer l of every dense block receives l + 1 maps: the block input and each earlier "
        "layer's output",
        all(
            counts == list(range(1, len(counts) + 1))
            for blocks in received.values()
            for counts in blocks
        )
        and all(len(blocks) == 3 for blocks in received.values()),
    )
    run.check(
        "every run reports a test error in [0, 1]",
        all(0 <= network.test_error <= 1 for network in trained.values()),
    )


def _compare_with_resnet(
    run: ExperimentRun, costs: dict[str, dict[str, int]], trained: dict[str, TrainedNetwork]
) -> None:
    """The survey's claim: more accuracy per parameter than the ResNet."""
    residual_error = trained[RESIDUAL].test_error
    for name in (name for name in trained if name != RESIDUAL):
        ratio = costs[name]["params"] / costs[RESIDUAL]["params"]
        run.finding(
            f"{name} ({ratio:.2f}x ResNet-56's parameters) reaches lower test error than ResNet-56",
            trained[name].test_error < residual_error,
            f"{100 * trained[name].test_error:.1f}% vs {100 * residual_error:.1f}%",
        )


def _plot(run: ExperimentRun, trained: dict[str, TrainedNetwork]) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.5))
    axes = fig.subplots(1, 2)
    for name, network in trained.items():
        entry = run.results[name]
        axes[0].scatter(entry["params"] / 1e6, 100 * entry["test_error"], s=30)
        axes[0].annotate(
            name,
            (entry["params"] / 1e6, 100 * entry["test_error"]),
            fontsize=8,
            xytext=(4, 4),
            textcoords="offset points",
        )
        epochs = [row["epoch"] for row in network.history]
        axes[1].plot(epochs, [100 * e for e in entry["train_error"]], marker=".", label=name)
    axes[0].set_xlabel("parameters (millions, CIFAR-10)")
    axes[0].set_ylabel(f"test error % ({run.data_source or 'digits'})")
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel("training error %")
    axes[1].legend(fontsize="small")
    for ax in axes:
        ax.grid(alpha=0.3)
    run.save_figure(fig, "dense_vs_residual.png", "Test error against parameters; training error")
