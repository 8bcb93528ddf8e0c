"""cnnzoo benchmark MODEL...: images/s, latency, FLOPs and MFU of networks on this machine.

Times training steps or inference, optionally interleaved with torchvision's
same network. With --epoch, times one training epoch on a data set and splits
it into data loading and compute. With --loader (no MODEL), times decoding and
augmentation of an image folder alone, optionally against torchvision's
ImageFolder.
"""

from __future__ import annotations

import argparse
import json

from cnnzoo.cli import add_quiet_flag, parse_shape
from cnnzoo.cli.train import parse_model_option
from cnnzoo.device.memory_format import layout_name
from cnnzoo.errors import CnnzooError
from cnnzoo.models.registry import list_models
from cnnzoo.speed.benchmark import (
    MODES,
    PRECISIONS,
    BenchmarkResult,
    BenchmarkSettings,
    FastPathResult,
    RuntimeResult,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "models", nargs="*", metavar="MODEL", help="names or wildcards (none with --loader)"
    )
    parser.add_argument("--mode", choices=MODES, default="infer")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="images per step (default: 8; with --epoch, the training default)",
    )
    parser.add_argument(
        "--input",
        type=parse_shape,
        default=None,
        metavar="C,H,W",
        help="input size (default: the size the paper used)",
    )
    parser.add_argument("--precision", choices=tuple(PRECISIONS), default="fp32")
    parser.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        help="NHWC for both networks (--no-channels-last: NCHW for both); default: each its "
        "own, torchvision NCHW, ours NHWC in training and the faster one in inference",
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile first")
    parser.add_argument(
        "--no-fold",
        action="store_true",
        help="inference: keep batch norms instead of folding them into convolutions",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument(
        "--vs-torchvision",
        action="store_true",
        help="time torchvision's same network interleaved with ours and print the speed-up",
    )
    parser.add_argument(
        "--vs-onnxruntime",
        action="store_true",
        help="time ours eager and compiled against onnxruntime on our ONNX export, interleaved, "
        "and print the ratio (the runtimes choose their own layout and folding)",
    )
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per network")
    parser.add_argument("--iters", type=int, default=10, help="timed steps per network")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument(
        "--epoch",
        action="store_true",
        help="time one training epoch on --data and split data loading from compute",
    )
    parser.add_argument("--data", default="mnist5k", help="data set for --epoch and --loader")
    parser.add_argument(
        "--model-option", dest="model_options", type=parse_model_option, action="append",
        default=[], metavar="KEY=VALUE",
        help="--epoch: a constructor option, as for train (e.g. backbone=resnet18)",
    )  # fmt: skip
    parser.add_argument(
        "--loader",
        action="store_true",
        help="time decoding and augmentation of --data folder:PATH alone, no network",
    )
    parser.add_argument(
        "--image-size", type=int, default=224, help="--loader: RandomResizedCrop side"
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="--loader: worker processes (default: cores)"
    )
    parser.add_argument("--batches", type=int, default=20, help="--loader: timed batches a round")
    parser.add_argument(
        "--fast-paths",
        action="store_true",
        help="time channels_last, bf16, folding (and --compile) against plain fp32, interleaved",
    )
    add_quiet_flag(parser)


def run(args: argparse.Namespace) -> int:
    if args.loader:
        return _run_loader(args)
    if not args.models:
        raise CnnzooError("name a MODEL to time (or pass --loader to time the data alone)")
    names = _expand(args.models)
    if args.epoch:
        from cnnzoo.speed.epoch import benchmark_epoch, format_epoch

        results = [
            benchmark_epoch(
                name,
                args.data,
                batch_size=args.batch_size,
                threads=args.threads,
                precision=args.precision,
                channels_last=args.channels_last,
                model_options=dict(args.model_options),
            )
            for name in names
        ]
        if args.format == "json":
            print(json.dumps([r.as_dict() for r in results], indent=2))
        else:
            print("\n".join(format_epoch(r) for r in results))
        return 0

    from cnnzoo.speed.benchmark import benchmark_models

    settings = BenchmarkSettings(
        mode=args.mode,
        batch_size=args.batch_size or BenchmarkSettings.batch_size,
        input_size=args.input,
        precision=args.precision,
        channels_last=args.channels_last,
        compile=args.compile,
        fold_batchnorm=not args.no_fold,
        threads=args.threads,
        warmup=args.warmup,
        iters=args.iters,
    )
    if args.fast_paths:
        from cnnzoo.speed.benchmark import benchmark_fast_paths

        paths = [row for name in names for row in benchmark_fast_paths(name, settings)]
        if args.format == "json":
            print(json.dumps([r.as_dict() for r in paths], indent=2))
        else:
            print(format_fast_paths(paths))
        return 0
    if args.vs_onnxruntime:
        return _run_runtimes(names, settings, args)
    results = benchmark_models(names, settings, vs_torchvision=args.vs_torchvision)
    if args.format == "json":
        print(json.dumps([r.as_dict() for r in results], indent=2))
    else:
        print(format_table(results, vs_torchvision=args.vs_torchvision))
    return 0


def _run_runtimes(names: list[str], settings: BenchmarkSettings, args: argparse.Namespace) -> int:
    from cnnzoo.speed.benchmark import benchmark_runtimes

    if args.vs_torchvision or args.fast_paths:
        raise CnnzooError("--vs-onnxruntime is a comparison of its own; drop --vs-torchvision")
    results = benchmark_runtimes(names, settings)
    if args.format == "json":
        print(json.dumps([r.as_dict() for r in results], indent=2))
    else:
        print(format_runtimes(results))
    return 0


def _run_loader(args: argparse.Namespace) -> int:
    from cnnzoo.speed.loader import benchmark_loader, format_loader

    if args.models:
        raise CnnzooError("--loader times the data alone; drop the MODEL names")
    for name in ("image_size", "batches"):
        if getattr(args, name) < 1:
            raise CnnzooError(f"--{name.replace('_', '-')} must be at least 1")
    result = benchmark_loader(
        args.data,
        image_size=args.image_size,
        batch_size=args.batch_size or 64,
        workers=args.workers,
        batches=args.batches,
        vs_torchvision=args.vs_torchvision,
    )
    print(
        json.dumps(result.as_dict(), indent=2) if args.format == "json" else format_loader(result)
    )
    return 0


def _expand(patterns: list[str]) -> list[str]:
    names: list[str] = []
    for pattern in patterns:
        if any(c in pattern for c in "*?["):
            matched = list_models(pattern)
            if not matched:
                raise CnnzooError(f"no model matches {pattern!r}; run `cnnzoo list`")
            names.extend(matched)
        else:
            names.append(pattern)
    return list(dict.fromkeys(names))


def format_table(results: list[BenchmarkResult], *, vs_torchvision: bool = False) -> str:
    """An aligned text table, one row per network, settings and peak in a header line."""
    first = results[0]
    c, h, w = first.input_size
    header_line = (
        f"mode={first.mode} precision={first.precision} threads={first.threads} "
        f"compile={first.compile} "
        f"matmul peak={first.peak_gflops_per_second:.0f} GFLOP/s"
    )
    columns = [
        "model",
        "batch",
        "input",
        "img/s",
        "p50 ms",
        "p90 ms",
        "GFLOP/img",
        "GFLOP/s",
        "MFU",
        "layout",
    ]
    if vs_torchvision:
        columns += ["torchvision img/s", "layout", "ours/torchvision", "p10-p90"]
    rows = []
    for r in results:
        c, h, w = r.input_size
        row = [
            r.model,
            str(r.batch_size),
            f"{c}x{h}x{w}",
            f"{r.images_per_second:.1f}",
            f"{r.latency_p50_ms:.1f}",
            f"{r.latency_p90_ms:.1f}",
            f"{r.flops_per_image / 1e9:.3f}",
            f"{r.gflops_per_second:.1f}",
            f"{100 * r.mfu:.1f}%",
            layout_name(r.channels_last),
        ]
        if vs_torchvision:
            row += (
                [
                    f"{r.torchvision_images_per_second:.1f}",
                    layout_name(bool(r.torchvision_channels_last)),
                    f"{r.speedup_vs_torchvision:.3f}",
                    f"{r.speedup_p10:.2f}-{r.speedup_p90:.2f}",
                ]
                if r.speedup_vs_torchvision is not None
                else ["-", "-", "-", "-"]
            )
        rows.append(row)
    lines = [header_line, *_aligned(columns, rows)]
    notes = sorted({note for r in results for note in r.notes})
    if notes:
        lines.append("note: ours " + "; ".join(notes))
    if first.load is not None:
        lines.append(f"machine: {first.load.describe()}")
    return "\n".join(lines)


def _aligned(columns: list[str], rows: list[list[str]], left: int = 1) -> list[str]:
    """``columns`` and ``rows`` as lines, the first ``left`` columns left-aligned."""
    widths = [max(len(row[i]) for row in [columns, *rows]) for i in range(len(columns))]
    return [
        "  ".join(
            value.ljust(width) if index < left else value.rjust(width)
            for index, (value, width) in enumerate(zip(row, widths))
        )
        for row in [columns, *rows]
    ]


def format_runtimes(results: list[RuntimeResult]) -> str:
    """One row per network: images/s eager, compiled and in onnxruntime, and ours / onnxruntime."""
    columns = [
        "model",
        "batch",
        "input",
        "eager img/s",
        "compiled img/s",
        "compile s",
        "onnxruntime img/s",
        "best ours",
        "ours/onnxruntime",
        "p10-p90",
        "machine",
    ]
    rows = []
    for r in results:
        c, h, w = r.input_size
        compiled = r.compiled_images_per_second
        rows.append(
            [
                r.model,
                str(r.batch_size),
                f"{c}x{h}x{w}",
                f"{r.eager_images_per_second:.1f}",
                "-" if compiled is None else f"{compiled:.1f}",
                "-" if r.compile_seconds is None else f"{r.compile_seconds:.0f}",
                f"{r.onnxruntime_images_per_second:.1f}",
                r.best_ours,
                f"{r.ours_vs_onnxruntime:.2f}",
                f"{r.ratio_p10:.2f}-{r.ratio_p90:.2f}",
                "-" if r.load is None else r.load.describe(),
            ]
        )
    lines = [f"fp32 inference, {results[0].threads} threads for each runtime"]
    lines += _aligned(columns, rows)
    lines += [f"{r.model} eager: {r.eager_path}" for r in results]
    lines += [f"{r.model}: {note}" for r in results for note in r.notes]
    return "\n".join(lines)


def format_fast_paths(results: list[FastPathResult]) -> str:
    """One row per (network, fast path): images/s and the speed-up over plain fp32."""
    columns = ["model", "mode", "fast path", "img/s", "p50 ms", "speed-up", "p10-p90"]
    rows = [
        [
            r.model,
            r.mode,
            r.fast_path,
            f"{r.images_per_second:.1f}",
            f"{r.latency_p50_ms:.1f}",
            f"{r.speedup:.2f}x",
            f"{r.speedup_p10:.2f}-{r.speedup_p90:.2f}",
        ]
        for r in results
    ]
    lines = _aligned(columns, rows, left=3)
    loads = {r.model: r.load for r in results if r.load is not None}
    lines += [f"machine while timing {model}: {load.describe()}" for model, load in loads.items()]
    return "\n".join(lines)
