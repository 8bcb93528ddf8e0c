"""Transfer: weights learnt on one data set pay on another that has few labels.

Yosinski et al. 2014 ("How transferable are features in deep neural
networks?", arXiv:1411.1792) showed that a network initialised with
features learnt on a related task, then fine-tuned, beats one trained from
scratch on the target task; the gain is largest where the target has few
labelled images, which is why fine-tuning pretrained weights is how most
networks are trained today. Here at CPU scale: ResNet-20 (the CIFAR ResNet)
is pretrained on ``mnist5k`` (4,000 training digits, 28x28), then trained on
a seeded, stratified 10 % of ``digits`` (scikit-learn's 8x8 scans, about 130
images) either from those weights (``--init-from``) or from scratch, with one
recipe, and both are scored on the whole ``digits`` test split. Both data
sets are resized to 32x32 grey images, ResNet-20's input size. Both sets
have the classes 0-9, so every tensor, the classifier included, starts from
the pretrained network.
"""

from __future__ import annotations

import statistics
from typing import Any

from cnnzoo.experiments.base import ExperimentRun, describe_budget, register_experiment
from cnnzoo.models.registry import create_model
from cnnzoo.runs.config import TrainConfig
from cnnzoo.runs.directory import scratch_run
from cnnzoo.train.finetune import init_from_checkpoint
from cnnzoo.train.trainer import train

MODEL = "resnet20"
SOURCE, TARGET = "mnist5k", "digits"
TRAIN_FRACTION = 0.1
# One recipe for both arms; a full run fine-tunes for 20 epochs of about 4 batches each.
BUDGETS: dict[str, dict[str, Any]] = {
    "quick": {
        "pretrain": {"iterations": 2, "batch_size": 16},
        "target": {"iterations": 2, "batch_size": 16},
        "seeds": (0,),
    },
    "full": {
        "pretrain": {"epochs": 4, "batch_size": 64},
        "target": {"epochs": 20, "batch_size": 32},
        "seeds": (0, 1, 2),
    },
}
LEARNING_RATE = 0.02


def _config(data: str, budget: dict[str, Any], seed: int, **options: Any) -> TrainConfig:
    """ResNet-20 on ``data`` at 32x32 grey with the experiment's one recipe."""
    return TrainConfig(
        model=MODEL,
        data=data,
        image_size=32,
        in_channels=1,
        lr=LEARNING_RATE,
        seed=seed,
        **budget,
        **options,
    )


def _train_target(budget: dict[str, Any], seed: int, init_from: str | None) -> dict[str, Any]:
    """Test metrics of ResNet-20 trained on the 10 % share of digits, from ``init_from`` or not."""
    config = _config(TARGET, budget, seed, train_fraction=TRAIN_FRACTION, init_from=init_from)
    with scratch_run(config, "transfer") as quiet:
        return train(quiet, force=True).metrics


def _spread(values: list[float]) -> str:
    """``mean ± sample standard deviation`` of test accuracies, as percentages."""
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):.1f} ± {100 * spread:.1f} %"


@register_experiment(
    "transfer",
    title="Transfer: pretraining on MNIST pays on a few labelled digits",
    claim=(
        "A network fine-tuned from weights learnt on a related data set beats the same "
        "network trained from scratch when the target has few labels (Yosinski et al. 2014)."
    ),
)
def transfer(run: ExperimentRun) -> None:
    budget = BUDGETS[run.mode]
    seeds = budget["seeds"]
    arms: dict[str, list[dict[str, Any]]] = {"fine-tuned": [], "from scratch": []}
    with scratch_run(_config(SOURCE, budget["pretrain"], run.seed), "transfer") as pretrain:
        source_metrics = train(pretrain, force=True).metrics
        start = init_from_checkpoint(
            create_model(MODEL, num_classes=10, in_channels=1), pretrain.out, "classification"
        )
        for seed in run.progress(seeds, f"{len(seeds)} seeds x 2 arms"):
            arms["fine-tuned"].append(_train_target(budget["target"], seed, pretrain.out))
            arms["from scratch"].append(_train_target(budget["target"], seed, None))
    accuracy = {arm: [m["top1"] for m in metrics] for arm, metrics in arms.items()}
    images = {m["training_images"] for metrics in arms.values() for m in metrics}
    run.results.update(
        source_top1=source_metrics["top1"],
        seeds=list(seeds),
        test_top1=accuracy,
        training_images=sorted(images),
        budget={key: budget[key] for key in ("pretrain", "target")},
    )
    run.write(
        f"ResNet-20 pretrained on `{SOURCE}` ({describe_budget(budget['pretrain'])}, lr "
        f"{LEARNING_RATE}) reached {100 * source_metrics['top1']:.1f} % on its test split. "
        f"On `{TARGET}` each arm trained on {', '.join(map(str, sorted(images)))} images "
        f"(`--train-fraction {TRAIN_FRACTION}`; {describe_budget(budget['target'])}, lr "
        f"{LEARNING_RATE}, cosine, basic augmentation) and was scored on the whole test split "
        "(360 images). Test accuracy per seed:"
    )
    run.table(
        ["arm", "mean ± std", *[f"seed {seed}" for seed in seeds]],
        [
            [arm, _spread(values), *[f"{100 * value:.1f} %" for value in values]]
            for arm, values in accuracy.items()
        ],
    )
    run.check(
        "fine-tuning starts from every tensor of the pretrained network",
        not start.reset and bool(start.loaded),
        f"{len(start.loaded)} tensors loaded",
    )
    run.check(
        "both arms train on the same seeded, stratified 10 % of the training split",
        len(images) == 1 and min(images) >= 10,
        f"{sorted(images)} images",
    )
    tuned, scratch = (statistics.mean(accuracy[arm]) for arm in ("fine-tuned", "from scratch"))
    run.finding(
        "fine-tuning from mnist5k beats training from scratch on 10 % of digits",
        tuned > scratch,
        f"{100 * tuned:.1f} % against {100 * scratch:.1f} %, mean of {len(seeds)} seeds",
    )
