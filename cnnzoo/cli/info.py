"""cnnzoo info MODEL: every layer's output shape, parameters, FLOPs, stride and receptive field.

One row per layer (its qualified module name), then the totals; FLOPs are
2 x multiply-accumulates and the receptive field is in input pixels. Computed
from shapes alone, so any model at any size is quick.

--verify-rf checks the receptive fields against autograd: the gradient of a
centre unit with respect to the input, computed with positive constant
weights and no normalisation so nothing cancels, is non-zero exactly on the
unit's receptive field.
"""

from __future__ import annotations

import argparse

from cnnzoo.cli import parse_shape
from cnnzoo.errors import CnnzooError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from cnnzoo.analysis.layer_table import FORMATS

    parser.add_argument("model", help="a name from `cnnzoo list`")
    parser.add_argument(
        "--input", type=parse_shape, default=None, metavar="C,H,W",
        help="input size (default: the size the paper used)",
    )  # fmt: skip
    parser.add_argument(
        "--num-classes", type=int, default=None,
        help="output classes (default: 1000, or 21 for segmentation)",
    )  # fmt: skip
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format")
    parser.add_argument(
        "--depth", type=int, default=None, metavar="N",
        help="show modules nested at most N levels deep (1: the model's direct children)",
    )  # fmt: skip
    parser.add_argument(
        "--verify-rf", action="store_true",
        help="also measure the receptive field of each stage as the support of a centre "
        "unit's input gradient and compare it with the analytic value",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from cnnzoo.analysis.layer_table import format_table, layer_table
    from cnnzoo.analysis.loading import build_model, resolve_input

    if args.depth is not None and args.depth < 1:
        raise CnnzooError(f"--depth must be at least 1, got {args.depth}")
    if args.num_classes is not None and args.num_classes < 1:
        raise CnnzooError(f"--num-classes must be at least 1, got {args.num_classes}")
    shape = resolve_input(args.model, args.input)
    model = build_model(args.model, shape[0], args.num_classes, meta=True)
    try:
        table = layer_table(model, shape, args.model)
    except NotImplementedError:  # an operation without a shape-only (meta) kernel: compute
        model = build_model(args.model, shape[0], args.num_classes)
        table = layer_table(model, shape, args.model)
    print(format_table(table, args.format, args.depth))
    if args.verify_rf:
        print()
        print(_verification(model, shape))
    return 0


def _verification(model, shape: tuple[int, int, int]) -> str:
    """Analytic against measured receptive field at each stage and at the deepest map."""
    from cnnzoo.analysis.receptive_field import verify_receptive_field

    checks = verify_receptive_field(model, shape)
    if not checks:
        raise CnnzooError("no layer of this model keeps a spatial map to check")
    header = ("layer", "unit", "analytic", "analytic in image", "gradient support", "agrees")
    rows = []
    for check in checks:
        top, bottom, left, right = check.analytic_box
        rows.append(
            (
                check.layer,
                f"({check.unit[0]},{check.unit[1]})",
                _size(check.analytic_size),
                _size((bottom - top + 1, right - left + 1)),
                _size(check.gradient_size),
                "yes" if check.agrees else "NO",
            )
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header, *rows]]
    lines.insert(1, "-" * len(lines[0]))
    lines.append(
        "gradient support: input pixels with a non-zero gradient of the centre unit, with "
        "positive constant weights, no normalisation, average instead of max pooling; "
        "analytic in image: the field clipped to the input"
    )
    return "\n".join(lines)


def _size(pair: tuple[float, float]) -> str:
    first, second = (str(int(v)) if float(v).is_integer() else f"{v:.3g}" for v in pair)
    return first if first == second else f"{first}x{second}"
