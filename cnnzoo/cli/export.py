"""``cnnzoo export``: a trained run or a fresh network to ONNX or TorchScript, checked on save."""

from __future__ import annotations

import argparse
from pathlib import Path

from torch import nn

from cnnzoo.cli import parse_shape
from cnnzoo.errors import CnnzooError
from cnnzoo.speed.export import FORMATS, SUFFIXES, export_model


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a run or a model to ONNX or TorchScript and check its outputs",
        description="Export the best checkpoint of a run directory (or a checkpoint file, "
        "or a freshly initialised registered model) and check that the saved file "
        "computes the same outputs as PyTorch.",
    )
    parser.add_argument("source", metavar="RUN_DIR_OR_MODEL")
    parser.add_argument("--format", choices=FORMATS, default="onnx", dest="export_format")
    parser.add_argument(
        "--input",
        type=parse_shape,
        default=None,
        metavar="C,H,W",
        help="input size (default: the run's, or the size the paper used)",
    )
    parser.add_argument("--out", type=Path, default=None, help="output file")
    parser.add_argument(
        "--num-classes",
        type=int,
        default=None,
        help="classes of a fresh model (default: 1000, or 21 for segmentation)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    model, input_size, default_out, metadata = _load_source(args.source, args.num_classes)
    input_size = args.input or input_size
    out = args.out or default_out.with_suffix(SUFFIXES[args.export_format])
    report = export_model(model, input_size, out, args.export_format, metadata=metadata)
    if not report.matches:
        raise CnnzooError(
            f"the exported file {out} differs from PyTorch by {report.max_abs_diff:.2e} "
            f"(allowed {report.tolerance:.1e}); the format cannot express this model faithfully"
        )
    print(
        f"wrote {out} ({args.export_format}, input {'x'.join(map(str, input_size))}); "
        f"max |exported - PyTorch| = {report.max_abs_diff:.2e} on a batch of "
        f"{report.input_shape[0]} (allowed {report.tolerance:.1e}; PyTorch's own float32 "
        f"error {report.float32_error:.1e}, outputs up to {report.output_scale:.2g})"
    )
    return 0


def _load_source(
    source: str, num_classes: int | None
) -> tuple[nn.Module, tuple[int, int, int], Path, dict[str, str]]:
    """The model to export, its input size, a default output path and metadata to embed."""
    path = Path(source)
    if path.exists():
        from cnnzoo.engine.inference import load_model

        loaded = load_model(path)
        checkpoint = loaded.checkpoint
        run_dir = path if path.is_dir() else path.parent
        input_size = (checkpoint["in_channels"], *checkpoint["image_size"])
        metadata = {
            "model_name": checkpoint["model_name"],
            "task": checkpoint["task"],
            "class_names": ",".join(loaded.class_names),
        }
        if loaded.normalization is not None:
            metadata["normalization_mean"] = ",".join(map(str, loaded.normalization.mean))
            metadata["normalization_std"] = ",".join(map(str, loaded.normalization.std))
        return loaded.model, input_size, run_dir / "model", metadata

    from cnnzoo.registry import create_model, get_model_entry
    from cnnzoo.tasks import get_task

    entry = get_model_entry(source)  # an unknown name says which models exist
    classes = num_classes or get_task(entry.task).default_num_classes
    model = create_model(source, num_classes=classes, in_channels=entry.input_size[0])
    metadata = {"model_name": source, "task": entry.task, "weights": "random initialisation"}
    return model, entry.input_size, Path(source), metadata
