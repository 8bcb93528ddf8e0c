"""Networks side by side: parameters, FLOPs, latency and, from training runs, accuracy.

The survey's closing question -- how much accuracy each design buys for its
size and cost -- is answered by one table and one chart: accuracy (top-1 or
mean IoU, when run directories are given) or latency against
multiply-accumulates, with each network's bubble sized by its parameters.
Latencies carry the machine's load while they were timed: the table, the files
and the chart's title say "measured under load" when other work shared the
cores, since such timings can be many times too slow.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from torch import nn

from cnnzoo.analysis.figures import save_figure
from cnnzoo.analysis.latency import measure_latencies
from cnnzoo.analysis.layer_table import human
from cnnzoo.analysis.loading import build_model, resolve_input
from cnnzoo.errors import CnnzooError
from cnnzoo.inference.predictor import Predictor
from cnnzoo.measure.flops import count_flops, parameter_count
from cnnzoo.measure.load import LoadMeter, MachineLoad
from cnnzoo.progress import progress


@dataclass(frozen=True)
class ModelSummary:
    """One row of a comparison."""

    label: str  # the model name, or MODEL (RUN_DIR) for a trained run
    model: str  # registry name
    input_shape: tuple[int, int, int]
    params: int
    flops: int  # FLOPs (= 2 x MACs) of one image
    latency_ms: float | None  # median milliseconds per image on this machine
    metric: str | None  # "top1" or "miou" for runs
    score: float | None  # value of ``metric`` on the run's test split
    epochs: int | None = None  # a run's training epochs
    train_seconds: float | None = None  # a run's wall time of training and validation
    load: MachineLoad | None = None  # how busy the machine was while latencies were timed

    @property
    def macs(self) -> float:
        return self.flops / 2


@dataclass
class _Candidate:
    label: str
    model_name: str
    model: nn.Module  # real weights, for timing
    shape: tuple[int, int, int]
    metric: str | None = None
    score: float | None = None
    epochs: int | None = None
    train_seconds: float | None = None


def _named(name: str, input_shape: Sequence[int] | None) -> _Candidate:
    shape = resolve_input(name, input_shape)
    return _Candidate(name, name, build_model(name, shape[0]), shape)


def _trained(run_dir: Path) -> _Candidate:
    metrics_path = run_dir / "metrics.json"
    if not metrics_path.is_file():
        raise CnnzooError(
            f"{run_dir} has no metrics.json; give the directory of a finished `cnnzoo train` run"
        )
    metrics = json.loads(metrics_path.read_text())
    analyzed = Predictor.load(run_dir)
    metric = "top1" if analyzed.task == "classification" else "miou"
    return _Candidate(
        label=f"{analyzed.name} ({run_dir.name})",
        model_name=analyzed.name,
        model=analyzed.model,
        shape=analyzed.example_shape,
        metric=metric,
        score=metrics.get(metric),
        epochs=metrics.get("epochs"),
        train_seconds=metrics.get("train_seconds"),
    )


def compare_models(
    names: Sequence[str] = (),
    runs: Sequence[str | Path] = (),
    *,
    input_shape: Sequence[int] | None = None,
    latency: bool = True,
    repeats: int = 10,
) -> list[ModelSummary]:
    """Registered networks (random weights, ``input_shape`` or their paper size) and trained
    runs (their trained size and test score), with latencies timed interleaved."""
    sources = [(name, False) for name in names] + [(run, True) for run in runs]
    candidates = [
        _trained(Path(source)) if is_run else _named(str(source), input_shape)
        for source, is_run in progress(sources, "loading networks", unit="network")
    ]
    timings: list = [None] * len(candidates)
    load = None
    if latency:
        with LoadMeter() as meter:
            timings = measure_latencies([(c.model, c.shape) for c in candidates], repeats=repeats)
        load = meter.load
    return [
        ModelSummary(
            label=c.label,
            model=c.model_name,
            input_shape=c.shape,
            params=parameter_count(c.model),
            flops=count_flops(c.model, c.shape).total,
            latency_ms=None if timing is None else timing.median_ms,
            metric=c.metric,
            score=c.score,
            epochs=c.epochs,
            train_seconds=c.train_seconds,
            load=load,
        )
        for c, timing in zip(candidates, timings)
    ]


_HEADER = (
    "model",
    "input",
    "params",
    "GMACs",
    "FLOPs",
    "latency (ms)",
    "epochs",
    "train s",
    "score",
)
_RIGHT_ALIGNED = range(2, 8)


def _cells(row: ModelSummary) -> tuple[str, ...]:
    score = "-" if row.score is None else f"{row.metric} {row.score:.4f}"
    latency = "-" if row.latency_ms is None else f"{row.latency_ms:.2f}"
    return (
        row.label,
        "x".join(map(str, row.input_shape)),
        f"{row.params:,}",
        f"{row.macs / 1e9:.3f}",
        human(row.flops),
        latency,
        "-" if row.epochs is None else str(row.epochs),
        "-" if row.train_seconds is None else f"{row.train_seconds:.0f}",
        score,
    )


def format_comparison(rows: Sequence[ModelSummary]) -> str:
    """The comparison as an aligned text table."""
    body = [_cells(r) for r in rows]
    widths = [max(len(r[i]) for r in [_HEADER, *body]) for i in range(len(_HEADER))]
    lines = [
        "  ".join(
            c.rjust(w) if i in _RIGHT_ALIGNED else c.ljust(w)
            for i, (c, w) in enumerate(zip(r, widths))
        )
        for r in [_HEADER, *body]
    ]
    lines.insert(1, "-" * len(lines[0]))
    lines.append(
        "GMACs: multiply-accumulates of one image (FLOPs = 2 x MACs); latency: median, batch 1"
    )
    load = _load(rows)
    if load is not None:
        lines.append(_load_note(load))
    return "\n".join(line.rstrip() for line in lines)


def write_comparison(rows: Sequence[ModelSummary], out_dir: Path) -> list[Path]:
    """``comparison.csv``, ``comparison.json`` and the chart ``comparison.png`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    records = [
        {**asdict(r), "macs": r.macs, "load": None if r.load is None else r.load.to_dict()}
        for r in rows
    ]
    with open(out_dir / "comparison.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(records[0]))
        writer.writeheader()
        for row, record in zip(rows, records):
            shape = "x".join(map(str, record["input_shape"]))
            load = "" if row.load is None else row.load.describe()
            writer.writerow({**record, "input_shape": shape, "load": load})
    (out_dir / "comparison.json").write_text(json.dumps(records, indent=2) + "\n")
    plot_comparison(rows, out_dir / "comparison.png")
    return [out_dir / "comparison.csv", out_dir / "comparison.json", out_dir / "comparison.png"]


def plot_comparison(rows: Sequence[ModelSummary], path: Path) -> None:
    """Score (when every row has one) or latency against GMACs; bubble area ~ parameters."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    by_score = all(r.score is not None for r in rows)
    if not by_score and any(r.latency_ms is None for r in rows):
        raise CnnzooError("the chart needs latencies (or scores from --runs for every model)")
    metrics = {r.metric for r in rows}
    y_label = (
        (
            "top-1 accuracy"
            if metrics == {"top1"}
            else "mean IoU"
            if metrics == {"miou"}
            else "score"
        )
        if by_score
        else "latency per image (ms)"
    )
    x = [r.macs / 1e9 for r in rows]
    y = [r.score if by_score else r.latency_ms for r in rows]
    largest = max(r.params for r in rows)
    sizes = [60 + 1500 * r.params / largest for r in rows]
    figure = Figure(figsize=(7, 4.5), dpi=100)
    axes = figure.subplots()
    colors = colormaps["tab10"]([i % 10 for i in range(len(rows))])
    axes.scatter(x, y, s=sizes, c=colors, alpha=0.6, edgecolors="black", linewidths=0.5)
    # A label goes above its bubble when the nearest neighbour along x lies lower, else
    # below; labels of the right-most bubbles go to their left so they stay in the frame.
    low, high = math.log(min(x)), math.log(max(x))
    for index, row in enumerate(rows):
        others = [j for j in range(len(rows)) if j != index]
        nearest = min(others, key=lambda j: abs(math.log(x[j] / x[index]))) if others else index
        above = y[index] >= y[nearest]
        right_side = high == low or (math.log(x[index]) - low) / (high - low) < 0.75
        axes.annotate(
            f"{row.label}\n{row.params / 1e6:.2f}M params",
            (x[index], y[index]),
            textcoords="offset points",
            xytext=(8 if right_side else -8, 6 if above else -24),
            ha="left" if right_side else "right",
            fontsize=8,
        )
    if max(x) > 10 * min(x) > 0:
        axes.set_xscale("log")
    if not by_score and max(y) > 10 * min(y) > 0:
        axes.set_yscale("log")
    axes.set_xlabel("GMACs per image (multiply-accumulates)")
    axes.set_ylabel(y_label)
    load = _load(rows)
    timed = "" if by_score or load is None else f"\n{_load_note(load)}"
    axes.set_title(f"Bubble area proportional to parameters{timed}")
    axes.margins(x=0.25, y=0.25)
    axes.grid(True, which="both", alpha=0.3)
    save_figure(figure, path)


def _load(rows: Sequence[ModelSummary]) -> MachineLoad | None:
    """The load the rows' latencies were timed under (one interleaved measurement)."""
    return next((row.load for row in rows if row.load is not None), None)


def _load_note(load: MachineLoad) -> str:
    """``"latency measured idle (load ...)"`` or ``"latency measured under load (load ...)"``."""
    return f"latency {'' if load.busy else 'measured '}{load.describe()}"
