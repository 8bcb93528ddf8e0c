"""One documentation page per model family, generated from the registry at build time.

Every figure on these pages is read from the code, so no model table is edited
by hand: parameters come from the network built at the task's default class
count, FLOPs and receptive fields from one pass of
:func:`cnnzoo.analysis.layer_table.layer_table` at the paper's input size, and
the block diagram from the stages the network declares in ``feature_info``.
The networks are built on PyTorch's meta device, so nothing is computed or
allocated and EfficientNet-B7 at 600x600 costs about as much as LeNet-5.

:func:`model_pages` returns the pages as ``{path: markdown}``; the MkDocs
hooks below add them to the site and to its navigation.
"""

from __future__ import annotations

import html
import inspect
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

from cnnzoo.analysis.layer_table import LayerRow, field_text, human, layer_table
from cnnzoo.analysis.loading import build_model
from cnnzoo.models.registry import ModelEntry, get_model_entry, list_models
from cnnzoo.tasks import get_task

MODELS_DIR = "models"
NAV_SECTION = "Models"  # the nav section of mkdocs.yml the family pages join


@dataclass(frozen=True)
class Stage:
    """One box of the block diagram: a stage's output and what a unit of it sees."""

    name: str  # qualified module name, e.g. "layer1"
    shape: tuple[int, ...]  # output of one image, (C, H, W)
    stride: str  # input pixels per output pixel, e.g. "8" or "-"
    receptive_field: str  # as `cnnzoo info` prints it: "51", "global", "~36", "99*"


@dataclass(frozen=True)
class VariantFacts:
    """What a family page says about one registered network."""

    entry: ModelEntry
    num_classes: int
    params: int
    flops: int  # FLOPs (= 2 x MACs) of one image at entry.input_size
    stages: list[Stage]
    output_shape: tuple[int, ...]  # of one image


def family_slug(family: str) -> str:
    """'ResNet (CIFAR)' -> 'resnet-cifar': the page's file name."""
    return re.sub(r"[^a-z0-9]+", "-", family.lower()).strip("-")


def _analyzed(name: str, entry: ModelEntry, num_classes: int) -> tuple[nn.Module, list[LayerRow]]:
    """The network and its layer table at the paper's size, from shapes alone where possible."""
    channels = entry.input_size[0]
    model = build_model(name, channels, num_classes, meta=True)
    try:
        table = layer_table(model, entry.input_size, name)
    except NotImplementedError:  # an operation with no shape-only kernel: compute it
        model = build_model(name, channels, num_classes)
        table = layer_table(model, entry.input_size, name)
    return model, table


def _stage_names(model: nn.Module, called: set[str]) -> list[str]:
    """The modules a diagram shows: the declared stages, else the top-level modules.

    A classifier lists its stages in ``feature_info``. A segmentation network
    shows its top-level parts, and an encoder among them is opened into its
    own stages (``encoder.layer1`` or, behind a feature extractor,
    ``encoder.model.layer1``).
    """
    if hasattr(model, "feature_info"):
        return [info.name for info in model.feature_info if info.name in called]
    names: list[str] = []
    for child_name, child in model.named_children():
        inner = [
            f"{child_name}.{prefix}{info.name}"
            for info in getattr(child, "feature_info", ())
            for prefix in ("", "model.")
            if f"{child_name}.{prefix}{info.name}" in called
        ]
        names.extend(inner or ([child_name] if child_name in called else []))
    return names


def _stride_text(row: LayerRow) -> str:
    field = row.field
    if field is None or field.is_global:
        return "-"
    vertical, horizontal = (f"{jump:g}" for jump in field.jump)
    return vertical if vertical == horizontal else f"{vertical}x{horizontal}"


def analyze_variant(name: str) -> VariantFacts:
    """Parameters, FLOPs and the stages of ``name`` at its paper's input size."""
    entry = get_model_entry(name)
    num_classes = get_task(entry.task).default_num_classes
    model, table = _analyzed(name, entry, num_classes)
    rows = {row.name: row for row in table.rows}
    stages = [
        Stage(
            stage,
            rows[stage].output_shape,
            _stride_text(rows[stage]),
            field_text(rows[stage].field),
        )
        for stage in _stage_names(model, set(rows))
    ]
    height, width = entry.input_size[1:]
    output = (num_classes,) if entry.task == "classification" else (num_classes, height, width)
    return VariantFacts(entry, num_classes, table.total_params, table.total_flops, stages, output)


def _shape_text(shape: Sequence[int]) -> str:
    return "x".join(str(side) for side in shape)


def block_diagram(facts: VariantFacts) -> str:
    """An inline SVG: input, each stage as a box whose height follows its map's side, output.

    The box height is proportional to the square root of the map's side, so a
    224-pixel input and a 7-pixel final map both stay legible; the label gives
    the exact shape and stride.
    """
    boxes = [("input", tuple(facts.entry.input_size), "")]
    boxes += [(s.name, s.shape, f"stride {s.stride}") for s in facts.stages]
    boxes.append(("output", facts.output_shape, ""))
    input_side = max(facts.entry.input_size[1:])
    longest = max(len(text) for label, shape, _ in boxes for text in (label, _shape_text(shape)))
    box_width, gap, top, tallest = max(110, 7 * longest + 12), 24, 8, 110
    width = len(boxes) * (box_width + gap) - gap + 2 * top
    height = tallest + 2 * top + 44
    parts = [
        f'<svg class="cnnzoo-diagram" viewBox="0 0 {width} {height}" width="{width}" '
        f'role="img" aria-label="stages of {html.escape(facts.entry.name)}" '
        'xmlns="http://www.w3.org/2000/svg" font-family="sans-serif" font-size="11">'
    ]
    for index, (label, shape, stride) in enumerate(boxes):
        side = shape[-1] if len(shape) == 3 else 1
        box_height = max(14, round(tallest * (min(side, input_side) / input_side) ** 0.5))
        x = top + index * (box_width + gap)
        y = top + (tallest - box_height) / 2
        fill = "#e3ecf7" if 0 < index < len(boxes) - 1 else "#f3f3f3"
        parts.append(
            f'<rect x="{x}" y="{y:.0f}" width="{box_width}" height="{box_height}" rx="4" '
            f'fill="{fill}" stroke="#4a6fa5"/>'
        )
        if index:
            arrow_y = top + tallest / 2
            parts.append(
                f'<path d="M{x - gap + 2} {arrow_y} h{gap - 8} l-4 -3 v6 l4 -3" '
                'stroke="#4a6fa5" fill="#4a6fa5"/>'
            )
        center = x + box_width / 2
        for line, text in enumerate((label, _shape_text(shape), stride)):
            parts.append(
                f'<text x="{center}" y="{top + tallest + 14 + 13 * line}" text-anchor="middle">'
                f"{html.escape(text)}</text>"
            )
    parts.append("</svg>")
    return '<div class="cnnzoo-diagram-frame">' + "".join(parts) + "</div>"


def _markdown_docstring(text: str) -> str:
    """A module docstring as Markdown: Sphinx roles and double backquotes become code."""
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"`\1`", text)
    return text.replace("``", "`")


def _family_introduction(entries: Sequence[ModelEntry]) -> list[str]:
    """The family files' own docstrings: the papers and what each design solved."""
    seen: list[str] = []
    for entry in entries:
        module = sys.modules.get(entry.builder.__module__)
        doc = inspect.getdoc(module) if module is not None else None
        if doc and doc not in seen:
            seen.append(doc)
    return [_markdown_docstring(doc) + "\n" for doc in seen]


def _summary_table(variants: Sequence[VariantFacts]) -> list[str]:
    lines = [
        "| network | parameters | input (paper) | MACs | FLOPs | smallest input | torchvision |",
        "|---|---:|---|---:|---:|---:|---|",
    ]
    for facts in variants:
        entry = facts.entry
        lines.append(
            f"| [`{entry.name}`](#{entry.name}) | {facts.params:,} | "
            f"{_shape_text(entry.input_size)} | {human(facts.flops / 2)} | {human(facts.flops)} | "
            f"{entry.min_size} | {entry.torchvision or '-'} |"
        )
    return lines


def _variant_section(facts: VariantFacts) -> list[str]:
    entry = facts.entry
    lines = [
        f"## {entry.name}",
        "",
        f"{entry.paper}. {facts.params:,} parameters at {facts.num_classes} classes; "
        f"{human(facts.flops)} FLOPs ({human(facts.flops / 2)} multiply-accumulates) on one "
        f"{_shape_text(entry.input_size)} image. "
        f"`cnnzoo info {entry.name}` prints every layer.",
        "",
        block_diagram(facts),
        "",
        "| stage | output | stride | receptive field |",
        "|---|---|---:|---:|",
    ]
    lines += [
        f"| `{s.name}` | {_shape_text(s.shape)} | {s.stride} | {s.receptive_field} |"
        for s in facts.stages
    ]
    return [*lines, ""]


def family_page(family: str, variants: Sequence[VariantFacts]) -> str:
    """The Markdown page of one family: its papers, a summary table, then each variant."""
    entries = [facts.entry for facts in variants]
    papers = list(dict.fromkeys(entry.paper for entry in entries))
    task = entries[0].task
    lines = [
        f"# {family}",
        "",
        "*Generated from the registry when the site is built; every number below is "
        "computed from the code.*",
        "",
        *_family_introduction(entries),
        "## Papers",
        "",
        *[f"- {paper}" for paper in papers],
        "",
        "## Variants",
        "",
        f"Parameters at {get_task(task).default_num_classes} classes (the {task} default) "
        "and the paper's input channels; FLOPs (= 2 x multiply-accumulates, "
        "`torch.utils.flop_counter`) and receptive fields of one image at the paper's "
        "input size, counted from shapes alone on PyTorch's meta device. A receptive "
        "field of `global` sees the whole input, `~` marks an upper bound (after "
        "upsampling), `*` a unit that also sees a global summary.",
        "",
        *_summary_table(variants),
        "",
    ]
    for facts in variants:
        lines += _variant_section(facts)
    return "\n".join(lines)


def _models_index(families: dict[str, list[VariantFacts]]) -> str:
    lines = [
        "# Models",
        "",
        "Every registered network, one page per family, generated from the registry "
        "(`cnnzoo.models.registry`) when the site is built. `cnnzoo list` prints the same "
        "names; [using the models](../guide/models.md) shows how to build them.",
        "",
        "| family | task | networks | papers |",
        "|---|---|---|---|",
    ]
    for family, variants in families.items():
        names = ", ".join(f"`{facts.entry.name}`" for facts in variants)
        papers = "; ".join(dict.fromkeys(facts.entry.paper for facts in variants))
        lines.append(
            f"| [{family}]({family_slug(family)}.md) | {variants[0].entry.task} | {names} "
            f"| {papers} |"
        )
    return "\n".join([*lines, ""])


def model_pages(names: Sequence[str] | None = None) -> dict[str, str]:
    """The generated pages, ``{path under docs/: markdown}``: the index, then each family.

    ``names`` limits the pages to those networks (default: every registered one).
    """
    families: dict[str, list[VariantFacts]] = {}
    for name in list_models() if names is None else names:
        facts = analyze_variant(name)
        families.setdefault(facts.entry.family, []).append(facts)
    pages = {f"{MODELS_DIR}/index.md": _models_index(families)}
    for family, variants in families.items():
        pages[f"{MODELS_DIR}/{family_slug(family)}.md"] = family_page(family, variants)
    return pages


# ---------------------------------------------------------------------------
# MkDocs hooks (mkdocs.yml `hooks:`): the pages are made once per build.

_PAGES: dict[str, str] = {}


def on_config(config):
    """Make the pages and list each family under the Models section of the nav."""
    _PAGES.clear()
    _PAGES.update(model_pages())
    family_entries = [
        {text.splitlines()[0].removeprefix("# "): path}
        for path, text in _PAGES.items()
        if path != f"{MODELS_DIR}/index.md"
    ]
    for item in config["nav"] or []:
        if isinstance(item, dict) and NAV_SECTION in item:
            item[NAV_SECTION] = [*item[NAV_SECTION], *family_entries]
    return config


def on_files(files, config):
    """Add the generated pages as if they were files under docs/."""
    from mkdocs.structure.files import File

    for path, text in _PAGES.items():
        files.append(File.generated(config, path, content=text))
    return files
