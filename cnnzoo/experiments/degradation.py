"""The degradation problem: a deeper plain network trains worse, a deeper residual one does not.

He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", 2015,
arXiv:1512.03385, section 4.2 and Fig. 6. On CIFAR-10 plain networks of 20 to
56 layers reach *higher training error* the deeper they are -- not
over-fitting, since training error itself rises -- while the same networks
with identity shortcuts train better as they grow. The survey presents this
as the problem residual learning solved.

Here the CIFAR networks of the registry (``plainN`` and ``resnetN``, the same
layers with and without shortcuts, equal in parameters) train on the offline
8x8 digits with one recipe, budget and seed, and their training and
validation error curves are drawn as in Fig. 6. ``--data`` trains them on
other data instead (CIFAR-10 at its own 32x32, as in the paper).
"""

from __future__ import annotations

from typing import Any

from cnnzoo.analysis.gradient_flow import parameterised_layers
from cnnzoo.experiments.base import ExperimentRun, register_experiment
from cnnzoo.experiments.registered_training import TrainedNetwork, train_registered, trained_on

# The paper's Fig. 1 pair (20 and 56 layers); 110 layers doubles the run time again.
DEPTHS = (20, 56)
# One recipe for every network (He et al. section 4.2: SGD, momentum 0.9, batch 128 at
# lr 0.1; batch 64 at lr 0.05 keeps that ratio). The digits' native 8x8 gives maps of
# 8, 4 and 2 pixels in the three stages, a quarter of CIFAR's 32x32 per side.
RECIPE = {"data": "digits", "image_size": 8, "batch_size": 64, "lr": 0.05}
FULL_EPOCHS = 12
QUICK_ITERATIONS = 3  # quick runs: three steps of 32 images per network


@register_experiment(
    "degradation",
    title="Degradation: plain against residual networks as depth grows",
    claim="A deeper plain network reaches higher training error than a shallower one, "
    "while the same network with identity shortcuts does not.",
    takes_data=True,
)
def degradation(run: ExperimentRun) -> None:
    trained = _train_twins(run)
    epochs = len(next(iter(trained.values())).history)
    _report(run, _record_curves(run, trained), next(iter(trained.values())), epochs)
    _plot(run, trained)
    _check_twins(run, trained, epochs)
    _compare_depths(run)


def _train_twins(run: ExperimentRun) -> dict[str, TrainedNetwork]:
    """Plain and residual networks of each depth, trained with one recipe, budget and seed."""
    budget: dict[str, Any] = (
        {"iterations": QUICK_ITERATIONS, "batch_size": 32} if run.quick else {"epochs": FULL_EPOCHS}
    )
    names = [f"{family}{depth}" for depth in DEPTHS for family in ("plain", "resnet")]
    return {
        name: train_registered(name, run.recipe({**RECIPE, **budget, "seed": run.seed}))
        for name in run.progress(names, "training")
    }


def _record_curves(run: ExperimentRun, trained: dict[str, TrainedNetwork]) -> list[list[Any]]:
    """Each network's error curves and final errors in the results; the table's rows."""
    rows = []
    for name, network in trained.items():
        last = network.history[-1]
        run.results[name] = {
            "params": network.metrics["params"],
            "weighted_layers": len(parameterised_layers(network.model)),
            "train_error": [1 - row["train_top1"] for row in network.history],
            "val_error": [1 - row["val_top1"] for row in network.history],
            "train_loss": [row["train_loss"] for row in network.history],
            "final_train_error": 1 - last["train_top1"],
            "test_error": network.test_error,
            "train_seconds": network.metrics["train_seconds"],
        }
        rows.append(
            [
                name,
                network.metrics["params"],
                f"{100 * (1 - last['train_top1']):.1f}",
                f"{100 * (1 - last['val_top1']):.1f}",
                f"{100 * network.test_error:.1f}",
                f"{network.metrics['train_seconds']:.0f}",
            ]
        )
    return rows


def _report(
    run: ExperimentRun, rows: list[list[Any]], network: TrainedNetwork, epochs: int
) -> None:
    own_data = (
        f"`{RECIPE['data']}` at {RECIPE['image_size']}x{RECIPE['image_size']} (a fixed 20% "
        "test split; 10% of the rest held out for validation)"
    )
    run.write(
        f"Every network trained on {trained_on(run, network, own_data)} for "
        + (
            f"{QUICK_ITERATIONS} steps of 32 images (quick run)"
            if run.quick
            else f"{epochs} epochs of batch {RECIPE['batch_size']}"
        )
        + f", SGD lr {RECIPE['lr']} (cosine), weight decay 5e-4, no augmentation, seed "
        f"{run.seed}. Training error is measured on the training batches during the last "
        "epoch (as in the paper's Fig. 6); test error uses the best validation epoch."
    )
    run.table(
        ["network", "params", "train error %", "val error %", "test error %", "seconds"], rows
    )


def _check_twins(run: ExperimentRun, trained: dict[str, TrainedNetwork], epochs: int) -> None:
    """The twins differ only in their shortcuts, and every run logged sound curves."""
    for depth in DEPTHS:
        plain, residual = run.results[f"plain{depth}"], run.results[f"resnet{depth}"]
        run.check(
            f"plain{depth} and resnet{depth} have the same parameters (option A shortcuts "
            "are parameter-free)",
            plain["params"] == residual["params"],
            f"{plain['params']:,} each",
        )
        run.check(
            f"plain{depth} and resnet{depth} have {depth} weighted layers (6n+2)",
            plain["weighted_layers"] == residual["weighted_layers"] == depth,
        )
    run.check(
        "every run logged one row per epoch with errors in [0, 1] and finite losses",
        all(
            len(r["train_error"]) == epochs
            and all(0 <= e <= 1 for e in r["train_error"] + r["val_error"])
            and all(loss == loss and abs(loss) != float("inf") for loss in r["train_loss"])
            for r in (run.results[name] for name in trained)
        ),
    )


def _compare_depths(run: ExperimentRun) -> None:
    """He et al.'s Fig. 6: depth hurts the plain network's training error, not the ResNet's."""
    shallow, deep = DEPTHS[0], DEPTHS[-1]
    final = {name: entry["final_train_error"] for name, entry in run.results.items()}
    plain_shallow, plain_deep = final[f"plain{shallow}"], final[f"plain{deep}"]
    residual_shallow, residual_deep = final[f"resnet{shallow}"], final[f"resnet{deep}"]
    run.finding(
        f"plain-{deep} ends with higher training error than plain-{shallow}",
        plain_deep > plain_shallow,
        f"{100 * plain_deep:.1f}% vs {100 * plain_shallow:.1f}%",
    )
    run.finding(
        f"resnet-{deep} ends with no higher training error than resnet-{shallow}",
        residual_deep <= residual_shallow,
        f"{100 * residual_deep:.1f}% vs {100 * residual_shallow:.1f}%",
    )
    run.finding(
        f"with shortcuts the {deep}-layer network trains better than without",
        residual_deep < plain_deep,
        f"{100 * residual_deep:.1f}% vs {100 * plain_deep:.1f}%",
    )


def _plot(run: ExperimentRun, trained: dict[str, TrainedNetwork]) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.5))
    axes = fig.subplots(1, 2, sharey=True)
    colors = dict(zip(DEPTHS, ("tab:orange", "tab:red", "tab:purple")))
    for ax, family, title in zip(axes, ("plain", "resnet"), ("plain", "ResNet")):
        for depth in DEPTHS:
            history = trained[f"{family}{depth}"].history
            epochs = [row["epoch"] for row in history]
            for key, style, split in (
                ("train_top1", ".-", "train"),
                ("val_top1", "--", "validation"),
            ):
                ax.plot(
                    epochs,
                    [100 * (1 - r[key]) for r in history],
                    style,
                    color=colors[depth],
                    label=f"{title}-{depth} {split}",
                )
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    axes[0].set_ylabel("error %")
    run.save_figure(
        fig,
        "degradation_curves.png",
        "Training (solid) and validation (dashed) error of plain and residual networks",
    )
