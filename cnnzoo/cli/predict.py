"""``cnnzoo predict RUN_DIR_OR_CHECKPOINT PATH...``: classes with probabilities, or masks.

PATH may be image files, folders (searched recursively) or glob patterns;
files that are not images are skipped and counted in one line. Classifiers
print the top-k classes of each image with their softmax probabilities, or
write them as a table with ``--out FILE.csv`` / ``FILE.jsonl`` / ``DIR``
(``predictions.csv``); segmentation networks write a colour mask and an
overlay per image, and the table, into ``--out`` (default ``predictions/``).
Every output is checked before the first image is read.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from cnnzoo.cli import add_quiet_flag
from cnnzoo.cli.inference import add_inference_flags, check_counts, forward_maker
from cnnzoo.cli.paths import add_force_flag, writable_output
from cnnzoo.errors import CnnzooError

if TYPE_CHECKING:
    from cnnzoo.data.bad_images import BadImageLog

# The pictures a segmentation network's prediction leaves per image (inference.predict_files).
MASK_FILES = ("mask", "overlay")
# --out names a table file with one of these endings, anything else a folder.
TABLE_SUFFIXES = (".csv", ".jsonl")
# Where segmentation masks go without --out.
DEFAULT_MASK_DIR = Path("predictions")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="a run directory (uses best.pt) or a .pt file")
    parser.add_argument(
        "images", nargs="+", metavar="PATH",
        help="image files, folders (searched recursively) or glob patterns ('photos/**/*.jpg')",
    )  # fmt: skip
    parser.add_argument(
        "--out", type=Path, default=None,
        help="FILE.csv or FILE.jsonl: one row per image; DIR: DIR/predictions.csv "
        "(and segmentation masks); default: print classes, masks into predictions/",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print one JSON line per image")
    parser.add_argument(
        "--workers", type=int, default=None,
        help="processes reading images (default: one per core when there is more than a batch)",
    )  # fmt: skip
    add_inference_flags(parser, topk_help="classes given per image")
    add_force_flag(parser)
    add_quiet_flag(parser)


def run(args: argparse.Namespace) -> int:
    from cnnzoo.data.bad_images import BadImageLog
    from cnnzoo.data.files import find_images, unique_stems
    from cnnzoo.device.placement import pick_device
    from cnnzoo.inference.predict_files import predict_files
    from cnnzoo.inference.predictions import (
        PREDICTIONS_FILE,
        PredictionTable,
        table_columns,
        table_row,
    )
    from cnnzoo.inference.predictor import Predictor

    check_counts(args)
    found = find_images(args.images)
    loaded = Predictor.from_checkpoint(args.checkpoint, pick_device(args.device))
    table_path, mask_dir = _outputs(args, loaded.task, unique_stems(found.images), PREDICTIONS_FILE)
    if found.others:
        print(found.skipped_line(), file=sys.stderr)
    unreadable = BadImageLog(skip=True)
    results = predict_files(
        loaded, found.images, topk=args.topk, out_dir=mask_dir,
        make_forward=forward_maker(args.runtime), batch_size=args.batch_size,
        workers=args.workers, bad_images=unreadable,
    )  # fmt: skip
    start, written = time.perf_counter(), 0
    if table_path is None:
        for result in results:
            print(_describe(result, as_json=args.json))
            written += 1
    else:
        columns = table_columns(loaded.task, loaded.class_names, args.topk)
        with PredictionTable(table_path, columns) as table:
            for result in results:
                table.write(table_row(result))
                written += 1
    _report_unreadable(unreadable, written)
    if table_path is not None:
        rate = f"{written / max(time.perf_counter() - start, 1e-9):,.0f} images/s"
        print(f"{written:,} predictions written to {table_path} ({rate})", file=sys.stderr)
    return 0


def _report_unreadable(unreadable: BadImageLog, predicted: int) -> None:
    """One line for the image files that could not be decoded; an error if none could."""
    skipped = unreadable.skipped
    if skipped and not predicted:
        raise CnnzooError(f"none of the image files could be read; the first: {skipped[0].reason}")
    if skipped:
        from cnnzoo.data.files import first_few

        names = first_few([image.path for image in skipped])
        line = f"skipped {len(skipped)} image file(s) that could not be read: {names}"
        print(line, file=sys.stderr)


def _outputs(
    args: argparse.Namespace, task: str, stems: list[str], table_name: str
) -> tuple[Path | None, Path | None]:
    """(the table, the folder of masks), each checked before any image is read."""
    out = args.out
    if out is None and task == "classification":
        return None, None  # printed
    contents: list[str] = []
    if out is not None and out.suffix.lower() in TABLE_SUFFIXES:
        table, folder = writable_output(out, force=args.force), out.parent
    else:
        folder = out if out is not None else DEFAULT_MASK_DIR
        table, contents = folder / table_name, [table_name]
    if task == "segmentation":
        contents += [f"{stem}_{kind}.png" for stem in stems for kind in MASK_FILES]
    if contents:
        writable_output(folder, force=args.force, directory=True, contents=contents)
    return table, folder if task == "segmentation" else None


def _describe(result: dict, *, as_json: bool) -> str:
    """One line per image: JSON, the ranked classes, or the mask files written."""
    if as_json:
        return json.dumps(result)
    if "predictions" in result:
        ranked = "  ".join(f"{p['class']} {p['probability']:.3f}" for p in result["predictions"])
        return f"{result['image']}: {ranked}"
    return f"{result['image']}: {', '.join(result['files'])}"
