"""Predicting image files with a trained network: what ``cnnzoo predict`` runs.

Prediction prepares each file as evaluation of the run prepares its test
images (:attr:`~cnnzoo.inference.predictor.Predictor.preprocessing`) and
batches them as evaluation does, so that ``cnnzoo predict`` over a test folder
and ``cnnzoo eval`` agree image for image, and both describe an image the same
way (:mod:`cnnzoo.inference.predictions`). What runs the batches is a parameter
(:data:`~cnnzoo.inference.batching.ForwardMaker`): the model itself, or the
same weights compiled or exported, chosen above this layer
(``cnnzoo.speed.runners``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from cnnzoo.data.bad_images import (
    BadImageLog,
    first_readable_shape,
    readable_batches,
    readable_loader,
)
from cnnzoo.data.files import ImageFiles, unique_stems
from cnnzoo.data.mask_pictures import save_prediction
from cnnzoo.data.streaming import default_workers
from cnnzoo.device.placement import autocast
from cnnzoo.inference.batching import Forward, ForwardMaker, dataset_batch_size, model_forward
from cnnzoo.inference.predictions import pixel_shares, ranked_classes
from cnnzoo.inference.predictor import Predictor
from cnnzoo.progress import progress_bar
from cnnzoo.runs.config import EVAL_MEMORY_MB


def predict_files(
    loaded: Predictor,
    paths: Sequence[Path],
    *,
    topk: int = 5,
    out_dir: Path | None = None,
    make_forward: ForwardMaker | None = None,
    batch_size: int | None = None,
    workers: int | None = None,
    bad_images: BadImageLog | None = None,
) -> Iterator[dict[str, Any]]:
    """Each readable image's prediction, in order, as the batches are computed.

    Classification: the top-k classes with their probabilities
    (``{"image", "predictions"}``). Segmentation: ``STEM_mask.png`` and
    ``STEM_overlay.png`` written into ``out_dir`` (``{"image", "files",
    "shares"}``), one image per step as each keeps its own size. Images are
    prepared as :attr:`Predictor.preprocessing` says and batched as evaluation batches
    (``batch_size`` None: what the run's ``eval_memory_mb`` allows), read by
    ``workers`` DataLoader processes (None: one per core when there is more
    than one batch), and run by ``make_forward``'s choice (:func:`job_forward`).
    A file that cannot be decoded goes to ``bad_images`` (default: skipped).
    A bar counts the images where bars are on.
    """
    recipe = loaded.preprocessing
    files = ImageFiles(paths, recipe)
    device = next(loaded.model.parameters()).device
    run = loaded.checkpoint.recipe if loaded.checkpoint is not None else None
    precision = run.precision if run is not None else "fp32"
    if recipe.size is None:
        batch_size = 1
    elif batch_size is None:
        memory_mb = run.eval_memory_mb if run is not None else EVAL_MEMORY_MB
        options = {"device": device, "precision": precision}
        batch_size = dataset_batch_size(loaded.model, files, memory_mb, **options)
    forward = job_forward(loaded, files, batch_size, recipe.size is not None, make_forward)
    if workers is None:
        workers = default_workers() if len(paths) > batch_size else 0
    loader = readable_loader(
        files,
        batch_size=batch_size,
        num_workers=workers,
        pin_memory=device.type == "cuda",
    )
    stems = unique_stems(paths)
    log = bad_images or BadImageLog(skip=True)
    with progress_bar(len(paths), "predicting", unit="image") as bar:
        for images, indices in readable_batches(loader, log):
            model_input = recipe.normalized(images).to(device)
            with torch.no_grad(), autocast(device, precision):  # as evaluate() runs a runtime
                scores = forward(model_input).float().cpu()
            for index, image_scores, pixels in zip(indices.tolist(), scores, images):
                path, stem = paths[index], stems[index]
                yield _prediction(loaded, path, image_scores, pixels, topk, out_dir, stem)
            bar.update(len(indices))


def _prediction(
    loaded: Predictor,
    path: Path,
    scores: Tensor,
    pixels: Tensor,
    topk: int,
    out_dir: Path | None,
    stem: str,
) -> dict[str, Any]:
    """One image's result: its ranked classes, or its mask and overlay, written, and shares."""
    if loaded.task == "classification":
        ranked = ranked_classes(scores[None], loaded.class_names, topk)[0]
        return {"image": str(path), "predictions": ranked}
    written = save_prediction(pixels.float().div(255), scores, loaded.class_names, out_dir, stem)
    shares = pixel_shares(scores, loaded.class_names)
    return {"image": str(path), "files": [str(p) for p in written], "shares": shares}


def predict_images(
    loaded: Predictor, paths: list[Path], topk: int = 5, out_dir: Path | None = None
) -> list[dict[str, Any]]:
    """:func:`predict_files` of ``paths`` at once, in this process (masks into ``out_dir``)."""
    return list(
        predict_files(loaded, paths, topk=topk, out_dir=out_dir or Path("predictions"), workers=0)
    )


def job_forward(
    loaded: Predictor,
    dataset: Dataset,
    batch_size: int,
    fixed_size: bool,
    make_forward: ForwardMaker | None,
) -> Forward:
    """What runs ``dataset``'s batches: ``make_forward``'s choice, or the model itself.

    The example it is given is a batch of ``batch_size`` images shaped as
    the first image that decodes, so a runtime that specialises to its
    input (a compiled graph, an ONNX graph) is set up for the batches it will
    see; ``fixed_size`` says whether every image has that shape.
    """
    shape = first_readable_shape(dataset)
    if make_forward is None or shape is None:
        return model_forward(loaded.model)
    device = next(loaded.model.parameters()).device
    example = torch.zeros(min(batch_size, len(dataset)), *shape, device=device)
    return make_forward(loaded.model, example, len(dataset), fixed_size)
