"""Inception's 1x1 reductions: the same module shapes at a fraction of the cost.

Szegedy et al., "Going Deeper with Convolutions", arXiv:1409.4842, §4 and Fig. 2.
The naive module (Fig. 2a) runs 1x1, 3x3 and 5x5 convolutions and a 3x3
max-pool on the full input and concatenates them; since the pool branch keeps
all input channels, the output grows from module to module and the 5x5
convolutions on many channels dominate the cost. The module with dimension
reductions (Fig. 2b) puts a 1x1 convolution in front of the 3x3 and 5x5
branches and after the pool. This experiment builds both versions of every
module of Table 1 at the map size it sees in GoogLeNet at 224x224 input and
counts parameters and FLOPs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from cnnzoo.experiments.base import ExperimentRun, register_experiment
from cnnzoo.measure.flops import count_flops, parameter_count
from cnnzoo.models.classification.googlenet import INCEPTION_CONFIGS

# The map side each module sees in GoogLeNet at 224x224 (Table 1: 28x28, 14x14, 7x7).
MAP_SIDE = {"3": 28, "4": 14, "5": 7}


def _conv(in_channels: int, out_channels: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2), nn.ReLU(inplace=True)
    )


class InceptionModule(nn.Module):
    """Fig. 2a (``reduce=False``: naive) or Fig. 2b (``reduce=True``), with the paper's 5x5."""

    def __init__(self, in_channels: int, widths: Sequence[int], reduce: bool) -> None:
        super().__init__()
        # The widths of a row of Table 1, in the column order of INCEPTION_CONFIGS.
        ch1x1, ch3x3_reduce, ch3x3, ch5x5_reduce, ch5x5, pool_proj = widths
        self.branch1x1 = _conv(in_channels, ch1x1, 1)
        if reduce:
            self.branch3x3 = nn.Sequential(
                _conv(in_channels, ch3x3_reduce, 1), _conv(ch3x3_reduce, ch3x3, 3)
            )
            self.branch5x5 = nn.Sequential(
                _conv(in_channels, ch5x5_reduce, 1), _conv(ch5x5_reduce, ch5x5, 5)
            )
            self.branch_pool = nn.Sequential(
                nn.MaxPool2d(3, stride=1, padding=1), _conv(in_channels, pool_proj, 1)
            )
            self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj
        else:
            self.branch3x3 = _conv(in_channels, ch3x3, 3)
            self.branch5x5 = _conv(in_channels, ch5x5, 5)
            self.branch_pool = nn.MaxPool2d(3, stride=1, padding=1)
            self.out_channels = ch1x1 + ch3x3 + ch5x5 + in_channels

    def forward(self, x: Tensor) -> Tensor:
        branches = (self.branch1x1, self.branch3x3, self.branch5x5, self.branch_pool)
        return torch.cat([branch(x) for branch in branches], dim=1)


@register_experiment(
    "inception-reduction",
    title="Inception: 1x1 reductions before the 3x3 and 5x5 convolutions",
    claim="1x1 convolutions that reduce channels before the expensive 3x3 and 5x5 "
    "convolutions cut an Inception module's parameters and FLOPs several times over.",
)
def inception_reduction(run: ExperimentRun) -> None:
    per_module, rows = _count_every_module()
    totals = _totals(per_module)
    run.results["modules"] = per_module
    run.results["totals"] = totals
    _report(run, rows, totals)
    _plot(run, per_module)
    _check_savings(run, per_module, totals)


def _count_module(
    widths: list[int], side: int, in_channels: int, naive_in: int
) -> dict[str, dict[str, int]]:
    """Parameters, FLOPs and output width of one module built naively, naively on the
    compounded input of a naive stack, and with reductions."""
    counts = {}
    for label, module_in, reduce in (
        ("naive", in_channels, False),
        ("naive, stacked", naive_in, False),
        ("reduced", in_channels, True),
    ):
        with torch.device("meta"):  # shapes only: counting needs no arithmetic
            module = InceptionModule(module_in, widths, reduce)
        counts[label] = {
            "params": parameter_count(module),
            "flops": count_flops(module, (module_in, side, side)).total,
            "out_channels": module.out_channels,
        }
    return counts


def _count_every_module() -> tuple[dict[str, dict[str, dict[str, int]]], list[list]]:
    """Every module of Table 1 counted three ways (:func:`_count_module`); the table's rows."""
    rows, per_module = [], {}
    naive_in = None  # in a stack of naive modules the pool branch makes the input grow
    for name, in_channels, *widths in INCEPTION_CONFIGS:
        side = MAP_SIDE[name[len("inception")]]
        if naive_in is None or name.endswith("a"):
            naive_in = in_channels
        counts = per_module[name] = _count_module(widths, side, in_channels, naive_in)
        naive_in = counts["naive, stacked"]["out_channels"]
        naive, reduced, stacked = (counts[k] for k in ("naive", "reduced", "naive, stacked"))
        rows.append(
            [
                name,
                f"{side}x{side}",
                in_channels,
                naive["params"],
                reduced["params"],
                f"{naive['flops'] / 1e9:.2f}",
                f"{reduced['flops'] / 1e9:.2f}",
                f"{naive['flops'] / reduced['flops']:.1f}x",
                stacked["out_channels"],
                f"{stacked['flops'] / 1e9:.2f}",
            ]
        )
    return per_module, rows


def _totals(per_module: dict[str, dict[str, dict[str, int]]]) -> dict[str, dict[str, int]]:
    """Parameters and FLOPs of the nine modules together, for each way of building them."""
    return {
        label: {
            key: sum(module[label][key] for module in per_module.values())
            for key in ("params", "flops")
        }
        for label in ("naive", "naive, stacked", "reduced")
    }


def _report(run: ExperimentRun, rows: list[list], totals: dict[str, dict[str, int]]) -> None:
    run.write(
        "Every Inception module of GoogLeNet (Table 1), built naively (Fig. 2a) and with "
        "1x1 reductions (Fig. 2b), on the input it sees at 224x224. FLOPs = 2 x "
        "multiply-accumulates, counted by `torch.utils.flop_counter`. The last column is "
        "the output width and cost if naive modules were stacked: the pool branch passes "
        "all input channels on, so the width compounds within each stage."
    )
    run.table(
        [
            "module",
            "map",
            "in",
            "params naive",
            "params reduced",
            "GFLOPs naive",
            "GFLOPs reduced",
            "saving",
            "stacked naive width",
            "GFLOPs stacked naive",
        ],
        rows,
    )
    naive, reduced, stacked = (totals[k] for k in ("naive", "reduced", "naive, stacked"))
    run.write(
        f"All nine modules: {naive['params']:,} parameters and "
        f"{naive['flops'] / 1e9:.2f} GFLOPs naive against {reduced['params']:,} and "
        f"{reduced['flops'] / 1e9:.2f} GFLOPs with reductions: "
        f"{naive['params'] / reduced['params']:.1f}x fewer parameters and "
        f"{naive['flops'] / reduced['flops']:.1f}x fewer FLOPs. Stacked naively, as a network "
        f"would have to, the nine modules would cost {stacked['flops'] / 1e9:.2f} "
        f"GFLOPs, {stacked['flops'] / reduced['flops']:.1f}x the reduced ones."
    )


def _check_savings(
    run: ExperimentRun,
    per_module: dict[str, dict[str, dict[str, int]]],
    totals: dict[str, dict[str, int]],
) -> None:
    run.check(
        "every module is cheaper with 1x1 reductions (parameters and FLOPs)",
        all(
            m["reduced"]["params"] < m["naive"]["params"]
            and m["reduced"]["flops"] < m["naive"]["flops"]
            for m in per_module.values()
        ),
    )
    run.check(
        "reductions leave each module's output width unchanged when the pool is projected",
        all(
            m["reduced"]["out_channels"] == m["naive"]["out_channels"] - cfg[1] + cfg[7]
            for m, cfg in zip(per_module.values(), INCEPTION_CONFIGS)
        ),
    )
    run.check(
        "stacked naive modules cost more than the same modules fed their Table 1 input",
        totals["naive, stacked"]["flops"] > totals["naive"]["flops"],
    )
    flop_ratio = totals["naive"]["flops"] / totals["reduced"]["flops"]
    run.finding(
        "reductions cut the modules' FLOPs by more than 2x",
        flop_ratio > 2,
        f"{flop_ratio:.1f}x",
    )


def _plot(run: ExperimentRun, per_module: dict) -> None:
    from matplotlib.figure import Figure

    names = list(per_module)
    positions = range(len(names))
    fig = Figure(figsize=(8, 3.5))
    ax = fig.subplots()
    ax.bar(
        [p - 0.2 for p in positions],
        [per_module[n]["naive"]["flops"] / 1e9 for n in names],
        width=0.4,
        label="naive (Fig. 2a)",
    )
    ax.bar(
        [p + 0.2 for p in positions],
        [per_module[n]["reduced"]["flops"] / 1e9 for n in names],
        width=0.4,
        label="1x1 reductions (Fig. 2b)",
    )
    ax.set_xticks(list(positions), [n.removeprefix("inception") for n in names])
    ax.set_xlabel("Inception module")
    ax.set_ylabel("GFLOPs per image")
    ax.legend()
    run.save_figure(fig, "inception_flops.png", "FLOPs of each Inception module", dpi=100)
