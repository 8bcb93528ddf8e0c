"""cnnzoo export RUN_DIR_OR_MODEL: a network to ONNX or TorchScript, checked on save, or a
trained network to share as safetensors weights with its config and model card.

ONNX and TorchScript export the best checkpoint of a run directory (or a
checkpoint file, or a freshly initialised registered model) and check that the
saved file computes the same outputs as PyTorch. ``--format safetensors``
writes a folder that ``cnnzoo.load`` reads back (:mod:`cnnzoo.inference.export`);
it needs a trained run, since a fresh network has no weights worth sharing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from torch import nn

from cnnzoo.cli import parse_shape
from cnnzoo.cli.paths import add_force_flag, writable_output
from cnnzoo.errors import CnnzooError
from cnnzoo.speed.export import FORMATS, SUFFIXES, export_model

# Weights, config.json and a model card in one folder: a trained network to share.
SHARED_FORMAT = "safetensors"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="RUN_DIR_OR_MODEL")
    parser.add_argument(
        "--format", choices=(*FORMATS, SHARED_FORMAT), default="onnx", dest="export_format"
    )
    parser.add_argument(
        "--input",
        type=parse_shape,
        default=None,
        metavar="C,H,W",
        help="input size (default: the run's, or the size the paper used)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output file; for safetensors a folder (default: RUN/export)",
    )
    parser.add_argument(
        "--num-classes",
        type=int,
        default=None,
        help="classes of a fresh model (default: 1000, or 21 for segmentation)",
    )
    add_force_flag(parser)


def run(args: argparse.Namespace) -> int:
    if args.export_format == SHARED_FORMAT:
        return _share(args)
    out = args.out or _default_out(args.source).with_suffix(SUFFIXES[args.export_format])
    writable_output(out, force=args.force, label="the export file")
    model, input_size, metadata = _load_source(args.source, args.num_classes)
    input_size = args.input or input_size
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


def _share(args: argparse.Namespace) -> int:
    """Write the folder of a trained network: model.safetensors, config.json, README.md."""
    from cnnzoo.inference.export import EXPORT_FILES, export_shared
    from cnnzoo.models.registry import get_model_entry

    source = Path(args.source)
    if not source.exists():
        entry = get_model_entry(args.source)  # not a model either: the closest names
        raise CnnzooError(
            f"{args.source!r} is a model name, and a fresh {entry.name} has no trained weights "
            f"to share; train it (cnnzoo train {entry.name} ...) and export the run directory"
        )
    if args.input is not None or args.num_classes is not None:
        raise CnnzooError(
            "--input and --num-classes apply to onnx and torchscript; safetensors shares "
            "the run's own network and input"
        )
    default = source / "export" if source.is_dir() else source.with_name(f"{source.stem}-export")
    out = writable_output(
        args.out or default,
        force=args.force,
        directory=True,
        contents=EXPORT_FILES,
        label="the export folder",
    )
    config = export_shared(source, out)
    print(
        f"wrote {out} ({', '.join(EXPORT_FILES)}): {config['model']} with "
        f"{len(config['class_names'])} classes, weights of {config['weights']}; "
        f"load it with cnnzoo.load({str(out)!r})"
    )
    return 0


def _default_out(source: str) -> Path:
    """``model`` beside a run's checkpoints, or the model's name here; the format adds a suffix."""
    path = Path(source)
    if path.exists():
        return (path if path.is_dir() else path.parent) / "model"
    return Path(source)


def _load_source(
    source: str, num_classes: int | None
) -> tuple[nn.Module, tuple[int, int, int], dict[str, str]]:
    """The model to export, its input size and metadata to embed."""
    from cnnzoo.inference.predictor import Predictor

    if Path(source).exists():
        loaded = Predictor.from_checkpoint(source)
        metadata = {
            "model_name": loaded.name,
            "task": loaded.task,
            "class_names": ",".join(loaded.class_names),
        }
        normalization = loaded.preprocessing.normalization
        if normalization is not None:
            metadata["normalization_mean"] = ",".join(map(str, normalization.mean))
            metadata["normalization_std"] = ",".join(map(str, normalization.std))
        return loaded.model, loaded.example_shape, metadata
    fresh = Predictor.from_model_name(source, num_classes=num_classes)
    metadata = {"model_name": source, "task": fresh.task, "weights": "random initialisation"}
    return fresh.model, fresh.example_shape, metadata
