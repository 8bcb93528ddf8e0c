"""One markdown table from several ``cnnzoo benchmark --vs-torchvision --format json`` files.

(Files from ``--vs-onnxruntime`` give the runtime table instead:
:func:`runtime_table`, one row per network and batch size.)

``make bench`` times training and inference at two sizes, one JSON file per
(mode, size); this joins them into the README's speed table: a row per
network, a column per setting, each cell ours / torchvision images per second
with the median paired ratio and its 10th-90th percentile range. A line under
the table says how busy the machine was while the busiest of them was timed,
and "measured under load" where that was too busy for the numbers to stand.

    python -m cnnzoo.speed.report runs/benchmark/*.json
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from cnnzoo.device.memory_format import layout_name
from cnnzoo.errors import CnnzooError
from cnnzoo.measure.load import MachineLoad


def _setting(result: dict) -> str:
    _, height, width = result["input_size"]
    return f"{result['mode']} {height}x{width}, batch {result['batch_size']}"


def _cell(result: dict) -> str:
    ratio = result.get("speedup_vs_torchvision")
    if ratio is None:
        raise CnnzooError(f"{result['model']}: no torchvision timing; run with --vs-torchvision")
    ours, theirs = result["channels_last"], bool(result.get("torchvision_channels_last"))
    named = ours != theirs  # a layout is named only where the two differ
    ours_layout, their_layout = (f"{layout_name(c)} " if named else "" for c in (ours, theirs))
    return (
        f"{ours_layout}{result['images_per_second']:.1f} / "
        f"{their_layout}{result['torchvision_images_per_second']:.1f} = "
        f"**{ratio:.2f}** ({result['speedup_p10']:.2f}-{result['speedup_p90']:.2f})"
    )


def _results(paths: Sequence[Path]) -> list[dict]:
    results = []
    for path in paths:
        try:
            results += json.loads(Path(path).read_text())
        except (OSError, ValueError) as error:
            raise CnnzooError(f"{path} is not a benchmark JSON file: {error}") from None
    if not results:
        raise CnnzooError("no benchmark results in the files given")
    return results


def runtime_table(paths: Sequence[Path]) -> str:
    """The markdown table of ``--vs-onnxruntime`` results: a row per network and batch size."""
    lines = [
        "| network | batch | eager img/s | compiled img/s (compile s) | onnxruntime img/s "
        "| best ours / onnxruntime (p10-p90) | other processes used |",
        "|---|---|---|---|---|---|---|",
    ]
    loads = []
    for result in _results(paths):
        compiled = result["compiled_images_per_second"]
        compiled_cell = (
            "-" if compiled is None else f"{compiled:.1f} ({result['compile_seconds']:.0f} s)"
        )
        load = _load(result["load"]) if result.get("load") else None
        loads += [load] if load else []
        others = (
            "-"
            if load is None or load.other_cores is None
            else f"{load.other_cores:.2f} of {load.cores} cores"
        )
        lines.append(
            f"| {result['model']} | {result['batch_size']} "
            f"| {result['eager_images_per_second']:.1f} | {compiled_cell} "
            f"| {result['onnxruntime_images_per_second']:.1f} "
            f"| {result['best_ours']} **{result['ours_vs_onnxruntime']:.2f}** "
            f"({result['ratio_p10']:.2f}-{result['ratio_p90']:.2f}) | {others} |"
        )
    return "\n".join([*lines, "", _load_line(loads)])


def speed_table(paths: Sequence[Path]) -> str:
    """The markdown table of the benchmark results in ``paths``."""
    cells: dict[str, dict[str, str]] = {}
    settings: list[str] = []
    loads: list[MachineLoad] = []
    for result in _results(paths):
        setting = _setting(result)
        if setting not in settings:
            settings.append(setting)
        cells.setdefault(result["model"], {})[setting] = _cell(result)
        if result.get("load"):
            loads.append(_load(result["load"]))
    settings.sort(key=lambda s: (not s.startswith("train"), s))
    lines = [
        "| network | " + " | ".join(settings) + " |",
        "|---|" + "---|" * len(settings),
    ]
    for model, row in cells.items():
        lines.append(f"| {model} | " + " | ".join(row.get(s, "-") for s in settings) + " |")
    lines.append("")
    lines.append(
        "images/s ours / torchvision = **median of the per-round ratios** "
        "(10th-90th percentile of those ratios); NHWC / NCHW: the memory layout each ran in, "
        "where the two differ"
    )
    lines.append("")
    lines.append(_load_line(loads))
    return "\n".join(lines)


def _load(recorded: dict) -> MachineLoad:
    return MachineLoad(
        recorded["start"], recorded["end"], recorded["cores"], recorded.get("other_cores")
    )


def _load_line(loads: list[MachineLoad]) -> str:
    """The machine's state during the busiest measurement: a table taken idle can stand,
    one measured under load says so."""
    if not loads:
        return "Machine load: not recorded (benchmark files written before it was)"
    busiest = max(loads, key=lambda load: max(load.start, load.end) / load.cores)
    return f"Machine load: {busiest.describe()}"


def main(argv: Sequence[str] | None = None) -> int:
    paths = [Path(p) for p in (sys.argv[1:] if argv is None else argv)]
    try:
        runtimes = "ours_vs_onnxruntime" in _results(paths)[0]
        print(runtime_table(paths) if runtimes else speed_table(paths))
    except CnnzooError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
