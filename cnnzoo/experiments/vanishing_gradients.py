"""Vanishing gradients: per-layer gradient norms of plain and residual networks.

The survey explains residual learning (He et al., "Deep Residual Learning for
Image Recognition", 2015, arXiv:1512.03385) as the cure for vanishing
gradients: in a deep plain network the gradient reaching the first layers is
a product of many layer Jacobians and shrinks, while a shortcut y = F(x) + x
passes it back unchanged. The paper itself is more careful (section 4.1): its
plain networks use batch normalisation, and "we have verified that the
backward propagated gradients exhibit healthy norms with BN", so it blames
the degradation on optimisation difficulty rather than on vanishing.

This experiment measures it. :class:`~cnnzoo.analysis.gradient_flow.GradNormRecorder`
records the L2 norm of the gradient of every convolution and fully connected
weight, input side first: once at initialisation for plain and residual
networks of growing depth, and every few steps while a plain and a residual
56-layer network train on the offline digits (or on the data ``--data`` names,
at the networks' paper size, 32x32).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from cnnzoo.analysis.gradient_flow import GradNormRecorder
from cnnzoo.data.batches import iterate_batches
from cnnzoo.experiments.base import ExperimentRun, register_experiment
from cnnzoo.experiments.registered_training import load_experiment_data, train_registered
from cnnzoo.models.registry import create_model
from cnnzoo.train.trainer import Callback, Trainer

# Depths compared at initialisation: the paper's 20 and 56 and its 110-layer ResNet.
INIT_DEPTHS = {"quick": (20, 56), "full": (20, 56, 110)}
# Depth trained while recording: 56, where the plain network degrades (paper Fig. 1).
TRAINED_DEPTH = {"quick": 20, "full": 56}
IMAGE_SIZE = 8  # the digits' native 8x8
BATCH_SIZE = 64
FULL_EPOCHS = 5
RECORD_EVERY = {"quick": 1, "full": 20}  # optimiser steps between recordings
QUICK_ITERATIONS = 3
EDGE_LAYERS = 3  # layers averaged at each end when comparing input side with output side


class _RecordGradNorms(Callback):
    """Keeps a :class:`GradNormRecorder` of the run's model in memory."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.recorder: GradNormRecorder | None = None

    def on_train_start(self, trainer: Trainer) -> None:
        self.recorder = GradNormRecorder(trainer.model, self.every)

    def on_after_backward(self, step: int, model: torch.nn.Module) -> None:
        assert self.recorder is not None
        self.recorder.after_backward(step)


def input_to_output_ratio(norms: list[float]) -> float:
    """Mean gradient norm of the first ``EDGE_LAYERS`` convolutions over that of the last.

    The fully connected layer at the end is left out: it is not a convolution
    and its gradient scale differs. Plain and residual twins have identical
    layer shapes, so their ratios compare directly.
    """
    convolutions = norms[:-1]
    first = sum(convolutions[:EDGE_LAYERS]) / EDGE_LAYERS
    last = sum(convolutions[-EDGE_LAYERS:]) / EDGE_LAYERS
    return first / last


def _norms_at_initialization(
    name: str, images: torch.Tensor, targets: torch.Tensor, num_classes: int, seed: int
) -> tuple[list[str], list[float]]:
    torch.manual_seed(seed)
    model = create_model(name, num_classes=num_classes, in_channels=images.shape[1]).train()
    recorder = GradNormRecorder(model, every=1)
    F.cross_entropy(model(images), targets).backward()
    recorder.after_backward(0)
    return [layer for layer, _ in recorder.layers], recorder.records[0][1]


@register_experiment(
    "vanishing-gradients",
    title="Vanishing gradients: per-layer gradient norms, plain against residual",
    claim="In a deep plain network the first layers receive much smaller gradients than "
    "the last; identity shortcuts keep the gradient norm level through the depth.",
    takes_data=True,
)
def vanishing_gradients(run: ExperimentRun) -> None:
    images, targets, num_classes = _first_batch(run)
    at_init = _norms_at_initialization_by_depth(run, images, targets, num_classes)
    training = _norms_while_training(run)
    _report_at_initialization(run, at_init, _batch_text(run, images))
    _report_training(run, training)
    _plot(run, at_init, training)
    _check_records(run, at_init, training)
    _compare_plain_with_residual(run, at_init, training)


def _batch_text(run: ExperimentRun, images: torch.Tensor) -> str:
    """The data of the first batch, for the report: ``"the digits (8x8)"``."""
    if run.data_source is None:
        return f"the digits ({IMAGE_SIZE}x{IMAGE_SIZE})"
    channels, height, width = images.shape[1:]
    return f"`{run.data_source}` ({height}x{width}, {channels} channel{'s' * (channels > 1)})"


def _first_batch(run: ExperimentRun) -> tuple[torch.Tensor, torch.Tensor, int]:
    """One shuffled training batch of the digits (or the chosen data), the same for every
    network."""
    network = f"plain{INIT_DEPTHS[run.mode][0]}"
    data = load_experiment_data(run, network, ("digits", IMAGE_SIZE, 1), run.seed)
    batches = iterate_batches(
        data.train,
        BATCH_SIZE,
        shuffle=True,
        generator=torch.Generator().manual_seed(run.seed),
        training=True,
    )
    images, targets = next(batches)
    return images, targets, len(data.class_names)


def _norms_at_initialization_by_depth(
    run: ExperimentRun, images: torch.Tensor, targets: torch.Tensor, num_classes: int
) -> dict[str, dict[str, Any]]:
    """One backward pass of the batch through freshly built plain and residual twins."""
    at_init: dict[str, dict[str, Any]] = {}
    for depth in INIT_DEPTHS[run.mode]:
        for family in ("plain", "resnet"):
            name = f"{family}{depth}"
            layers, norms = _norms_at_initialization(name, images, targets, num_classes, run.seed)
            at_init[name] = {
                "depth": depth,
                "layers": layers,
                "grad_norms": norms,
                "input_to_output_ratio": input_to_output_ratio(norms),
            }
    run.results["at_initialisation"] = at_init
    return at_init


def _norms_while_training(run: ExperimentRun) -> dict[str, dict[str, Any]]:
    """The plain and residual network of the trained depth, norms recorded as they train."""
    mode = run.mode
    training: dict[str, dict[str, Any]] = {}
    budget = {"iterations": QUICK_ITERATIONS} if run.quick else {"epochs": FULL_EPOCHS}
    for family in run.progress(("plain", "resnet"), "training"):
        name = f"{family}{TRAINED_DEPTH[mode]}"
        recording = _RecordGradNorms(RECORD_EVERY[mode])
        recipe = {"image_size": IMAGE_SIZE, "batch_size": BATCH_SIZE, "seed": run.seed, **budget}
        network = train_registered(name, run.recipe(recipe), callbacks=[recording])
        assert recording.recorder is not None
        records = recording.recorder.records
        training[name] = {
            "steps": [step for step, _ in records],
            "grad_norms": [norms for _, norms in records],
            "input_to_output_ratio": [input_to_output_ratio(norms) for _, norms in records],
            "test_error": network.test_error,
            "layers": len(recording.recorder.layers),
        }
    run.results["training"] = training
    return training


def _deepest_ratios(
    run: ExperimentRun, at_init: dict[str, dict[str, Any]]
) -> tuple[int, float, float]:
    """The deepest depth compared at initialisation, and its plain and residual ratios."""
    deepest = max(INIT_DEPTHS[run.mode])
    plain_ratio = at_init[f"plain{deepest}"]["input_to_output_ratio"]
    residual_ratio = at_init[f"resnet{deepest}"]["input_to_output_ratio"]
    return deepest, plain_ratio, residual_ratio


def _report_at_initialization(
    run: ExperimentRun, at_init: dict[str, dict[str, Any]], batch_text: str
) -> None:
    run.write(
        "Gradient L2 norm of every convolution and fully connected weight, recorded by "
        f"`GradNormRecorder` after the backward pass of a 64-image batch of {batch_text}"
        ", cross-entropy loss, networks in training mode (batch "
        "norm on batch statistics). *Input/output ratio*: mean norm of the first "
        f"{EDGE_LAYERS} convolutions over the mean of the last {EDGE_LAYERS}; below 1 the "
        "gradient shrinks towards the input. Plain and residual twins have identical "
        "layer shapes, so their ratios compare directly."
    )
    run.table(
        ["network", "layers", "first conv", "last conv", "fc", "input/output ratio"],
        [
            [
                name,
                len(entry["grad_norms"]),
                f"{entry['grad_norms'][0]:.3g}",
                f"{entry['grad_norms'][-2]:.3g}",
                f"{entry['grad_norms'][-1]:.3g}",
                f"{entry['input_to_output_ratio']:.3g}",
            ]
            for name, entry in at_init.items()
        ],
    )
    deepest, plain_ratio, residual_ratio = _deepest_ratios(run, at_init)
    run.write(
        f"At initialisation the first convolutions of plain-{deepest} get {plain_ratio:.3g} "
        f"times the gradient norm of its last ones, those of resnet-{deepest} "
        f"{residual_ratio:.3g} times: towards the input the plain network's gradients "
        f"{'grow' if plain_ratio > 1 else 'shrink'}."
    )


def _report_training(run: ExperimentRun, training: dict[str, dict[str, Any]]) -> None:
    mode = run.mode
    epochs = run.recipe({"epochs": FULL_EPOCHS})["epochs"]
    steps_text = f"{QUICK_ITERATIONS} steps (quick run)" if run.quick else f"{epochs} epochs"
    if run.data is not None:
        steps_text += f" ({run.data.describe()})"
    run.write(
        f"While training for {steps_text} (SGD lr 0.05, cosine, batch {BATCH_SIZE}), the "
        f"ratio every {RECORD_EVERY[mode]} steps:"
    )
    recorded_steps = training[f"plain{TRAINED_DEPTH[mode]}"]["steps"]
    run.table(
        ["step", *training],
        [
            [step, *(f"{entry['input_to_output_ratio'][i]:.3g}" for entry in training.values())]
            for i, step in enumerate(recorded_steps)
        ],
    )


def _check_records(
    run: ExperimentRun, at_init: dict[str, dict[str, Any]], training: dict[str, dict[str, Any]]
) -> None:
    """What must hold of the recordings whatever the budget."""
    every = RECORD_EVERY[run.mode]
    run.check(
        "one gradient norm per parameterised layer: as many as the network's depth (6n+2)",
        all(len(entry["grad_norms"]) == entry["depth"] for entry in at_init.values())
        and all(entry["layers"] == TRAINED_DEPTH[run.mode] for entry in training.values()),
    )
    run.check(
        "recorded layers run from the input (stem convolution) to the classifier",
        all(
            entry["layers"][0] == "stem.conv" and entry["layers"][-1] == "fc"
            for entry in at_init.values()
        ),
    )
    every_norm = [n for e in at_init.values() for n in e["grad_norms"]] + [
        n for e in training.values() for norms in e["grad_norms"] for n in norms
    ]
    run.check(
        "every recorded norm is finite and positive",
        all(math.isfinite(n) and n > 0 for n in every_norm),
    )
    run.check(
        f"norms were recorded every {every} steps from step 0",
        all(
            entry["steps"] == list(range(0, len(entry["steps"]) * every, every))
            for entry in training.values()
        ),
    )


def _compare_plain_with_residual(
    run: ExperimentRun, at_init: dict[str, dict[str, Any]], training: dict[str, dict[str, Any]]
) -> None:
    """The survey's claim against He et al.'s own: does the plain network's gradient vanish?"""
    deepest, plain_ratio, residual_ratio = _deepest_ratios(run, at_init)
    run.finding(
        f"at initialisation the first layers of plain-{deepest} get much (10x) smaller "
        f"gradients, relative to its last layers, than resnet-{deepest}'s",
        plain_ratio * 10 < residual_ratio,
        f"input/output ratio {plain_ratio:.3g} vs {residual_ratio:.3g}",
    )
    run.finding(
        f"with batch norm the gradient of plain-{deepest} does not vanish towards the input "
        "at initialisation (input/output ratio of at least 1; He et al. section 4.1)",
        plain_ratio >= 1,
        f"{plain_ratio:.3g}",
    )
    trained_depth = TRAINED_DEPTH[run.mode]
    plain, residual = training[f"plain{trained_depth}"], training[f"resnet{trained_depth}"]
    plain_trained = plain["input_to_output_ratio"][-1]
    residual_trained = residual["input_to_output_ratio"][-1]
    run.finding(
        f"at the last recorded step of training plain-{trained_depth}'s first layers get "
        f"smaller gradients, relative to its last layers, than resnet-{trained_depth}'s",
        plain_trained < residual_trained,
        f"input/output ratio {plain_trained:.3g} vs {residual_trained:.3g} "
        f"at step {plain['steps'][-1]}",
    )


def _plot(run: ExperimentRun, at_init: dict, training: dict) -> None:
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13, 3.6))
    axes = fig.subplots(1, 3, sharey=True)
    depth_colors = ("tab:blue", "tab:orange", "tab:red")
    depths = sorted({entry["depth"] for entry in at_init.values()})
    for depth, color in zip(depths, depth_colors):
        for family, style in (("plain", "-"), ("resnet", "--")):
            norms = at_init[f"{family}{depth}"]["grad_norms"]
            axes[0].plot(range(len(norms)), norms, style, color=color, label=f"{family}-{depth}")
    axes[0].set_title("at initialisation")
    axes[0].legend(fontsize="small", ncol=2)
    for ax, (name, entry) in zip(axes[1:], training.items()):
        colors = colormaps["viridis"](
            [i / max(1, len(entry["steps"]) - 1) for i in range(len(entry["steps"]))]
        )
        for step, norms, color in zip(entry["steps"], entry["grad_norms"], colors):
            ax.plot(range(len(norms)), norms, color=color, label=f"step {step}")
        ax.set_title(f"{name}, during training")
        ax.legend(fontsize="x-small", ncol=2)
    for ax in axes:
        ax.set_yscale("log")
        ax.set_xlabel("layer depth (0 = input side)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("gradient L2 norm")
    run.save_figure(
        fig, "gradient_norms.png", "Gradient norm of every weighted layer against depth"
    )
