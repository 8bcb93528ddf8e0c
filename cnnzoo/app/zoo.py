"""The Zoo view: every registered network, and a page per network.

A network's page is computed from shapes alone (the network built on the meta
device, as ``cnnzoo info`` builds it), so even EfficientNet-B7 answers at
once: the layer table, a block diagram -- the top-level modules in forward
order, each with the blocks inside it and their output shapes -- and the
paper. Two pages' totals side by side make the pick-two comparison.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from cnnzoo.errors import CnnzooError


def catalogue() -> dict[str, Any]:
    """Every registered network with its family, task and paper, in registration order."""
    from cnnzoo.models.registry import get_model_entry, list_models

    networks = []
    for name in list_models():
        entry = get_model_entry(name)
        networks.append(
            {"name": name, "family": entry.family, "task": entry.task, "paper": entry.paper}
        )
    return {
        "networks": networks,
        "families": sorted({n["family"] for n in networks}),
        "tasks": sorted({n["task"] for n in networks}),
    }


@lru_cache(maxsize=32)
def network_page(name: str) -> dict[str, Any]:
    """The layer table, block diagram and totals of ``name`` at the paper's input size."""
    from cnnzoo.analysis.layer_table import field_text, format_table, human, layer_table
    from cnnzoo.analysis.loading import build_model, resolve_input
    from cnnzoo.models.registry import get_model_entry

    entry = get_model_entry(name)
    shape = resolve_input(name, None)
    try:
        table = layer_table(build_model(name, shape[0], meta=True), shape, name)
    except NotImplementedError:  # an operation without a meta kernel: compute, as `info` does
        table = layer_table(build_model(name, shape[0]), shape, name)
    # The records of `cnnzoo info --format json`, so the page and the command agree by design.
    records = json.loads(format_table(table, "json"))["layers"]
    rows = [
        {
            **record,
            "depth": row.depth,
            "flops_text": human(row.flops),
            "field_text": field_text(row.field),
        }
        for record, row in zip(records, table.rows)
    ]
    return {
        "name": name,
        "family": entry.family,
        "task": entry.task,
        "paper": entry.paper,
        "torchvision": entry.torchvision,
        "input_shape": list(shape),
        "min_size": entry.min_size,
        "total_params": table.total_params,
        "total_flops": table.total_flops,
        "output_field": field_text(table.output_field),
        "convolutions": sum(r.type.startswith("Conv") for r in table.rows),
        "rows": rows,
        "diagram": _diagram(rows),
    }


def _diagram(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Top-level modules in forward order, each with the blocks directly inside it."""
    stages: list[dict[str, Any]] = []
    for row in rows:
        summary = {"name": row["name"], "type": row["type"], "shape": row["output_shape"]}
        if row["depth"] == 1:
            stages.append({**summary, "blocks": []})
        elif row["depth"] == 2 and stages and row["name"].startswith(stages[-1]["name"] + "."):
            stages[-1]["blocks"].append(summary)
    return stages


def compare_networks(first: str, second: str) -> dict[str, Any]:
    """The totals of two networks side by side."""
    if first == second:
        raise CnnzooError("pick two different networks to compare")
    keys = ("name", "family", "paper", "input_shape", "total_params", "total_flops",
            "output_field", "convolutions", "min_size")  # fmt: skip
    return {
        "networks": [
            {key: page[key] for key in keys} for page in (network_page(first), network_page(second))
        ]
    }
