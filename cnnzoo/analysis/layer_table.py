"""The layer table of ``cnnzoo info``: shape, parameters, FLOPs, stride and receptive field.

One forward pass of a single image does everything: forward hooks record each
module's output, :class:`~cnnzoo.measure.flops.ModuleFlops` attributes the
FLOPs, and :class:`~cnnzoo.analysis.receptive_field.ReceptiveFieldTracker`
follows the receptive field through every operation. On a model built on the
meta device nothing is computed, so even EfficientNet-B7 at 600x600 takes a
moment.

Each row is a module (its qualified name, as in ``model.named_modules()``), in
the order the forward pass first calls it; a row's parameters and FLOPs
include its children. Modules the forward pass does not call (auxiliary heads
in evaluation mode) have no row but count in the totals.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from cnnzoo.analysis.receptive_field import (
    FieldInfo,
    ModuleOutputs,
    ReceptiveFieldTracker,
    field_of,
    track_input,
)
from cnnzoo.measure.flops import ModuleFlops
from cnnzoo.measure.modes import evaluating

FORMATS = ("table", "csv", "json", "markdown")


@dataclass(frozen=True)
class LayerRow:
    name: str  # qualified module name, e.g. "layer1.0.conv1"
    type: str  # module class, e.g. "Conv2d"
    output_shape: tuple[int, ...]  # of one image: (C, H, W) for feature maps
    params: int  # parameters of the module and its children
    flops: int  # FLOPs (= 2 x MACs) of the module and its children, all calls
    field: FieldInfo | None  # receptive field of the output (None: not derived from the input)
    calls: int  # times the forward pass called the module
    depth: int  # nesting level among the modules that ran: 1 for the top-most ones


@dataclass(frozen=True)
class LayerTable:
    model: str
    input_shape: tuple[int, int, int]
    rows: list[LayerRow]
    total_params: int
    total_flops: int  # FLOPs (= 2 x MACs) of the whole forward pass
    output_field: FieldInfo | None  # receptive field of the model's output
    not_called: list[str]  # top-most modules the forward pass did not run

    @property
    def total_macs(self) -> float:
        return self.total_flops / 2

    def at_depth(self, depth: int | None) -> list[LayerRow]:
        return [r for r in self.rows if depth is None or r.depth <= depth]


def layer_table(model: nn.Module, input_shape: Sequence[int], model_name: str = "") -> LayerTable:
    """Run one image of ``input_shape`` (C, H, W) through ``model`` and tabulate every layer."""
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    x = track_input(torch.zeros(1, *input_shape, device=device))
    outputs = ModuleOutputs(model)
    try:
        with (
            torch.no_grad(),
            evaluating(model),
            ModuleFlops(model) as flops,
            ReceptiveFieldTracker(),
        ):
            output = model(x)
    finally:
        outputs.remove()
    modules = dict(model.named_modules())
    called = set(outputs.names)

    def depth(name: str) -> int:
        # A container the forward pass bypasses (it calls the children directly) is no level.
        parts = name.split(".")
        return 1 + sum(".".join(parts[:i]) in called for i in range(1, len(parts)))

    rows = [
        LayerRow(
            name=name,
            type=type(modules[name]).__name__,
            output_shape=tuple(outputs.outputs[name].shape[1:]),
            params=sum(p.numel() for p in modules[name].parameters()),
            flops=flops.per_module.get(name, 0),
            field=field_of(outputs.outputs[name]),
            calls=outputs.calls[name],
            depth=depth(name),
        )
        for name in outputs.names
    ]
    idle = [
        name
        for name in modules
        if name and name not in called and not any(c.startswith(name + ".") for c in called)
    ]
    not_called = [n for n in idle if not any(n.startswith(i + ".") for i in idle)]
    final = output[0] if isinstance(output, (tuple, list)) else output
    return LayerTable(
        model=model_name or type(model).__name__,
        input_shape=tuple(input_shape),  # type: ignore[arg-type]
        rows=rows,
        total_params=sum(p.numel() for p in model.parameters()),
        total_flops=flops.total,
        output_field=field_of(final),
        not_called=not_called,
    )


# ---------------------------------------------------------------------------
# Formatting.


def human(number: float) -> str:
    """1234567 -> '1.23M' (SI prefixes, three significant digits)."""
    for limit, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(number) >= limit:
            return f"{number / limit:.3g}{suffix}"
    return f"{number:.3g}" if number % 1 else str(int(number))


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.3g}"


def _pair_text(pair: tuple[float, float]) -> str:
    first, second = (_number(v) for v in pair)
    return first if first == second else f"{first}x{second}"


def field_text(field: FieldInfo | None) -> str:
    """Receptive field as the table shows it.

    '51'; 'global' (sees the whole input); '~36' (an upper bound); '99*' (global context).
    """
    if field is None:
        return "-"
    if field.is_global:
        return "global"
    text = _pair_text(field.size)
    if not field.exact:
        text = "~" + text
    if field.global_context:
        text += "*"
    return text


def _stride_text(field: FieldInfo | None) -> str:
    return "-" if field is None or field.is_global else _pair_text(field.jump)


def _shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in shape)


_HEADER = ("layer", "type", "output", "params", "FLOPs", "stride", "receptive field")


def _cells(row: LayerRow) -> tuple[str, ...]:
    return (
        row.name,
        row.type,
        _shape_text(row.output_shape),
        f"{row.params:,}",
        human(row.flops),
        _stride_text(row.field),
        field_text(row.field),
    )


def _totals(table: LayerTable) -> tuple[str, ...]:
    return (
        "total",
        "",
        "",
        f"{table.total_params:,}",
        human(table.total_flops),
        "",
        field_text(table.output_field),
    )


def _notes(table: LayerTable) -> list[str]:
    notes = [
        f"input {_shape_text(table.input_shape)}; FLOPs = 2 x multiply-accumulates: "
        f"{human(table.total_flops)} FLOPs = {table.total_macs / 1e9:.3f} GMACs",
        "receptive field and stride in input pixels; global = sees the whole input; "
        "* = also modulated by a global summary (e.g. SE gate); ~ = upper bound (upsampling)",
    ]
    if table.not_called:
        notes.append(
            f"not run in this forward pass (counted in total): {', '.join(table.not_called)}"
        )
    return notes


def format_table(table: LayerTable, fmt: str = "table", depth: int | None = None) -> str:
    """The table as plain text, CSV, JSON or Markdown; ``depth`` limits the nesting shown."""
    rows = table.at_depth(depth)
    if fmt == "csv":
        return _csv(rows)
    if fmt == "json":
        return _json(table, rows)
    body = [_cells(r) for r in rows] + [_totals(table)]
    if fmt == "markdown":
        lines = ["| " + " | ".join(_HEADER) + " |", "|" + "---|" * 3 + "---:|" * 2 + "---:|" * 2]
        lines += ["| " + " | ".join(c or " " for c in cells) + " |" for cells in body]
        return "\n\n".join(["\n".join(lines), *_notes(table)])
    widths = [max(len(r[i]) for r in [_HEADER, *body]) for i in range(len(_HEADER))]
    right = {3, 4, 5, 6}
    lines = []
    for cells in [_HEADER, *body]:
        lines.append(
            "  ".join(
                c.rjust(w) if i in right else c.ljust(w)
                for i, (c, w) in enumerate(zip(cells, widths))
            ).rstrip()
        )
    lines.insert(1, "-" * len(lines[0]))
    lines.insert(len(lines) - 1, "-" * len(lines[0]))
    return "\n".join(lines + _notes(table))


def _row_record(row: LayerRow) -> dict:
    field = row.field
    return {
        "name": row.name,
        "type": row.type,
        "output_shape": list(row.output_shape),
        "params": row.params,
        "flops": row.flops,
        "macs": row.flops / 2,
        "calls": row.calls,
        "stride": None if field is None else list(field.jump),
        "receptive_field": None if field is None else list(field.size),
        "global": None if field is None else field.is_global,
        "global_context": None if field is None else field.global_context,
        "exact": None if field is None else field.exact,
    }


def _csv(rows: list[LayerRow]) -> str:
    buffer = io.StringIO()
    records = [_row_record(r) for r in rows]
    columns = [
        "name", "type", "output_shape", "params", "flops", "macs", "calls",
        "stride_h", "stride_w", "receptive_field_h", "receptive_field_w",
        "global", "global_context", "exact",
    ]  # fmt: skip
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for record in records:
        stride = record["stride"] or ["", ""]
        field = record["receptive_field"] or ["", ""]
        writer.writerow(
            [
                record["name"], record["type"], _shape_text(tuple(record["output_shape"])),
                record["params"], record["flops"], _number(record["macs"]), record["calls"],
                *(_number(v) if v != "" else v for v in stride),
                *(_number(v) if v != "" else v for v in field),
                record["global"], record["global_context"], record["exact"],
            ]
        )  # fmt: skip
    return buffer.getvalue().rstrip("\n")


def _json(table: LayerTable, rows: list[LayerRow]) -> str:
    output = table.output_field
    document = {
        "model": table.model,
        "input_shape": list(table.input_shape),
        "total_params": table.total_params,
        "total_flops": table.total_flops,
        "total_macs": table.total_macs,
        "flops_convention": "FLOPs = 2 x multiply-accumulates (torch.utils.flop_counter)",
        "output_receptive_field": None if output is None else list(output.size),
        "not_called": table.not_called,
        "layers": [_row_record(r) for r in rows],
    }
    return json.dumps(document, indent=2)
