"""FCN's skips: fusing finer layers' scores sharpens the segmentation.

Long, Shelhamer, Darrell, "Fully Convolutional Networks for Semantic
Segmentation", CVPR 2015, arXiv:1411.4038, section 4.2 and Fig. 4. Scores
predicted at stride 32 and upsampled 32x (FCN-32s) give coarse blobs; adding
scores from pool4 (FCN-16s) and pool3 (FCN-8s) before upsampling lets the fine,
shallow layers place the boundaries: on PASCAL VOC 2011 mean IoU went from 59.4
to 62.4 to 62.7, and the outputs of Fig. 4 grow visibly sharper. The survey
presents this as the first fusion of low- and high-level features.

The three networks are built from ``cnnzoo.models.segmentation.fcn`` (the
:class:`~cnnzoo.models.segmentation.fcn.FCN` class with the registered variants' skip
strides) on the paper's VGG-16 encoder narrowed to 1/8 of its width, with batch
norm so that it trains from scratch in minutes (:func:`narrow_vgg16_encoder`;
pool3, pool4 and pool5 at strides 8, 16 and 32 as in the paper, without the
4096-channel fc6/fc7, which alone would cost a CPU more than the rest). They
are trained with one recipe on the synthetic shapes and compared by mean IoU
and by a boundary F1 score (:func:`boundary_f1`), which scores only where the
class changes -- what the skips are meant to improve.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset, TensorDataset

from cnnzoo.analysis.receptive_field import receptive_fields
from cnnzoo.data import DataSplits, load_data, plain_request
from cnnzoo.data.batches import iterate_batches
from cnnzoo.errors import CnnzooError
from cnnzoo.experiments.base import ExperimentRun, describe_budget, register_experiment
from cnnzoo.experiments.training import train_network
from cnnzoo.measure.flops import parameter_count
from cnnzoo.models.classification.base import FeatureExtractor
from cnnzoo.models.classification.vgg import VGG, VGG_CONFIGS
from cnnzoo.models.segmentation.base import init_weights
from cnnzoo.models.segmentation.fcn import FCN, SKIP_STRIDES
from cnnzoo.runs.config import TrainConfig

VARIANTS = ("fcn32s", "fcn16s", "fcn8s")
WIDTH_DIVISOR = 8  # VGG-16's 64-512 channels become 8-64
TOLERANCES = (1, 2)  # pixels a predicted boundary may be off and still count
SIDE = {"quick": 32, "full": 64}
RECIPE = {
    "quick": dict(iterations=2, batch_size=16),
    "full": dict(epochs=8, batch_size=16),
}
EXAMPLES = 4  # test images drawn side by side
SEGMENTATION_SCORES = ("miou", "pixel_acc", "iou_per_class")  # test metrics kept per network


def boundary_pixels(labels: Tensor) -> Tensor:
    """Pixels of a label map (..., H, W) whose label differs from a 4-neighbour's.

    Both pixels of a differing pair are marked, so a boundary is two pixels
    wide, the same for prediction and ground truth.
    """
    boundary = torch.zeros_like(labels, dtype=torch.bool)
    vertical = labels[..., 1:, :] != labels[..., :-1, :]
    horizontal = labels[..., :, 1:] != labels[..., :, :-1]
    boundary[..., 1:, :] |= vertical
    boundary[..., :-1, :] |= vertical
    boundary[..., :, 1:] |= horizontal
    boundary[..., :, :-1] |= horizontal
    return boundary


def _within(boundary: Tensor, tolerance: int) -> Tensor:
    """Pixels at most ``tolerance`` pixels (Euclidean) from a pixel of ``boundary``."""
    if tolerance == 0:
        return boundary
    offsets = torch.arange(-tolerance, tolerance + 1)
    disk = (offsets[:, None] ** 2 + offsets[None, :] ** 2 <= tolerance**2).float()
    near = F.conv2d(boundary.float().unsqueeze(1), disk[None, None], padding=tolerance)
    return near.squeeze(1) > 0


def boundary_f1(prediction: Tensor, target: Tensor, tolerance: int = 2) -> Tensor:
    """Boundary F1 score of each image of a batch of (N, H, W) label maps.

    The BF score of Csurka, Larlus, Perronnin, "What is a good evaluation
    measure for semantic segmentation?", BMVC 2013 (which SegNet reports),
    here over the boundaries of all classes at once: precision is the share
    of predicted boundary pixels within ``tolerance`` pixels of a true
    boundary pixel, recall the share of true boundary pixels within
    ``tolerance`` of a predicted one, F1 their harmonic mean. An image where
    neither map has a boundary scores 1; one where only one has scores 0.
    """
    if prediction.shape != target.shape or prediction.dim() != 3:
        raise CnnzooError(
            f"prediction and target must both be (N, H, W) label maps, got "
            f"{tuple(prediction.shape)} and {tuple(target.shape)}"
        )
    predicted, true = boundary_pixels(prediction), boundary_pixels(target)
    hits_predicted = (predicted & _within(true, tolerance)).flatten(1).sum(1).double()
    hits_true = (true & _within(predicted, tolerance)).flatten(1).sum(1).double()
    count_predicted = predicted.flatten(1).sum(1).double()
    count_true = true.flatten(1).sum(1).double()
    precision = hits_predicted / count_predicted.clamp(min=1)
    recall = hits_true / count_true.clamp(min=1)
    f1 = 2 * precision * recall / (precision + recall).clamp(min=1e-12)
    neither = (count_predicted == 0) & (count_true == 0)
    return torch.where(neither, torch.ones_like(f1), f1)


def predict(model: nn.Module, dataset: Any, batch_size: int = 100) -> Tensor:
    """Predicted label maps (N, H, W) of a segmentation data set, in its order."""
    model.eval()
    labels = []
    with torch.inference_mode():
        for images, _targets in iterate_batches(dataset, batch_size):
            labels.append(model(images).argmax(1))
    return torch.cat(labels)


def load_shapes(side: int, seed: int) -> tuple[DataSplits, Dataset]:
    """The shapes data set with its test split computed once and held as tensors.

    Shapes are generated on demand, and the test split is scored several
    times (metrics, predictions, boundaries); the generating split is returned
    too, for drawing its images.
    """
    data = load_data("shapes", plain_request(image_size=(side, side), in_channels=3, seed=seed))
    images, masks = zip(*(data.test[index] for index in range(len(data.test))))
    held = TensorDataset(torch.stack(images), torch.stack(masks))
    return dataclasses.replace(data, test=held), data.test


def finest_score_stride(model: nn.Module, side: int) -> int:
    """Stride of the finest score map an FCN fuses, read off the receptive-field tracker."""
    fields = receptive_fields(model, (model.in_channels, side, side))
    return int(
        min(
            field.jump[0]
            for name, field in fields.items()
            if name == "score" or name.startswith("skip_scores.")
        )
    )


def narrow_vgg16_encoder(divisor: int, in_channels: int = 3) -> FeatureExtractor:
    """VGG-16's convolutional stages (configuration D, batch-normalised) at 1/``divisor`` of
    the width, as a feature extractor with pool1 ... pool5 at strides 2 ... 32.

    Built on the meta device and then materialised, so that VGG's fully
    connected head (100 million weights, dropped by the feature interface)
    is never allocated; the convolutions get VGG's He initialisation.
    """
    config = [v if v == "M" else int(v) // divisor for v in VGG_CONFIGS["D"]]
    with torch.device("meta"):
        encoder = FeatureExtractor(VGG(config, in_channels=in_channels, batch_norm=True))
    encoder = encoder.to_empty(device="cpu")
    for module in encoder.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
    init_weights(encoder)
    return encoder


def fcn_variant(variant: str, num_classes: int, divisor: int = WIDTH_DIVISOR) -> FCN:
    """``fcn32s``, ``fcn16s`` or ``fcn8s`` on :func:`narrow_vgg16_encoder`."""
    encoder = narrow_vgg16_encoder(divisor)
    return FCN(encoder, SKIP_STRIDES[variant], num_classes, 3, reference_geometry=False)


@register_experiment(
    "fcn-skips",
    title="FCN-32s, 16s and 8s: skips from finer layers sharpen the segmentation",
    claim="Fusing the scores of finer layers (pool4 for FCN-16s, pool3 for FCN-8s) with the "
    "upsampled stride-32 scores raises mean IoU and gives sharper boundaries.",
)
def fcn_skips(run: ExperimentRun) -> None:
    side = SIDE[run.mode]
    data, generated_test = load_shapes(side, run.seed)
    truth = data.test.tensors[1]
    measured, predictions = _train_variants(run, data, side)
    run.results.update(
        {
            "image_size": side,
            "encoder": f"vgg16_bn/{WIDTH_DIVISOR}",
            "recipe": RECIPE[run.mode],
            "networks": measured,
        }
    )
    _report(run, measured, side)
    _plot_examples(run, generated_test, truth, predictions, data.class_names)
    _check_strides_and_scores(run, measured, truth)
    _compare_skips(run, measured)


def train_segmenter(
    model: nn.Module, data: DataSplits, recipe: dict[str, int], *, lr: float, seed: int
) -> dict[str, Any]:
    """The segmentation experiments' one recipe: Adam (cosine), weight decay 1e-4, no
    augmentation, ``recipe``'s budget; the test metrics of the last weights."""
    config = TrainConfig(
        optimizer="adam", lr=lr, weight_decay=1e-4, seed=seed, augment="none", **recipe
    )
    return train_network(model, data, config)


def _train_variants(
    run: ExperimentRun, data: DataSplits, side: int
) -> tuple[dict[str, dict[str, Any]], dict[str, Tensor]]:
    """FCN-32s, 16s and 8s from the same encoder weights: their scores and predictions."""
    truth = data.test.tensors[1]
    measured: dict[str, dict[str, Any]] = {}
    predictions: dict[str, Tensor] = {}
    for name in run.progress(VARIANTS, "training"):
        torch.manual_seed(run.seed)
        model = fcn_variant(name, len(data.class_names))
        metrics = train_segmenter(model, data, RECIPE[run.mode], lr=1e-3, seed=run.seed)
        predictions[name] = predict(model, data.test)
        measured[name] = {
            "params": parameter_count(model),
            "finest_score_stride": finest_score_stride(model, side),
            **{key: metrics[key] for key in SEGMENTATION_SCORES},
            **{
                f"boundary_f1_{t}px": float(boundary_f1(predictions[name], truth, t).mean())
                for t in TOLERANCES
            },
        }
    return measured, predictions


def _report(run: ExperimentRun, measured: dict[str, dict[str, Any]], side: int) -> None:
    run.write(
        "FCN-32s, 16s and 8s (`cnnzoo.models.segmentation.fcn.FCN` with each variant's skip "
        f"strides) on VGG-16-BN at 1/{WIDTH_DIVISOR} of its width, scores read from pool5 "
        "and fused with pool4 and pool3, each upsampler initialised to bilinear, all three "
        f"from the same encoder weights. Trained on `shapes` ({side}x{side}, 1,000 "
        "training and 200 test images, 4 classes) with one recipe: Adam lr 1e-3 (cosine), "
        f"weight decay 1e-4, {describe_budget(RECIPE[run.mode])}, no augmentation, seed "
        f"{run.seed}; test metrics of "
        "the last weights. Boundary F1: the share of boundary pixels (where the label "
        "changes) matched within 1 or 2 pixels, precision and recall combined, averaged "
        "over the test images."
    )
    run.table(
        ["network", "params", "mIoU", "pixel acc", *(f"boundary F1 ({t} px)" for t in TOLERANCES)],
        [
            [
                name,
                m["params"],
                f"{m['miou']:.4f}",
                f"{m['pixel_acc']:.4f}",
                *(f"{m[f'boundary_f1_{t}px']:.4f}" for t in TOLERANCES),
            ]
            for name, m in measured.items()
        ],
    )


def _check_strides_and_scores(
    run: ExperimentRun, measured: dict[str, dict[str, Any]], truth: Tensor
) -> None:
    run.check(
        "the finest scores fused come from stride 32, 16 and 8 in FCN-32s, 16s and 8s",
        [measured[name]["finest_score_stride"] for name in VARIANTS] == [32, 16, 8],
    )
    run.check(
        "boundary F1 scores lie in [0, 1] and a prediction equal to the truth scores 1",
        all(0 <= m[f"boundary_f1_{t}px"] <= 1 for m in measured.values() for t in TOLERANCES)
        and bool((boundary_f1(truth, truth, 1) == 1).all()),
    )


def _compare_skips(run: ExperimentRun, measured: dict[str, dict[str, Any]]) -> None:
    """Long et al.'s claim: each finer skip raises mIoU and sharpens the boundaries."""
    for coarse, fine in zip(VARIANTS, VARIANTS[1:]):
        run.finding(
            f"{fine} reaches a higher mIoU than {coarse}",
            measured[fine]["miou"] > measured[coarse]["miou"],
            f"{measured[fine]['miou']:.4f} vs {measured[coarse]['miou']:.4f}",
        )
    key = f"boundary_f1_{TOLERANCES[-1]}px"
    run.finding(
        "fcn8s places boundaries better than fcn32s",
        measured["fcn8s"][key] > measured["fcn32s"][key],
        f"boundary F1 {measured['fcn8s'][key]:.4f} vs {measured['fcn32s'][key]:.4f}",
    )


def _plot_examples(
    run: ExperimentRun,
    dataset: Any,
    truth: Tensor,
    predictions: dict[str, Tensor],
    class_names: list[str],
) -> None:
    from matplotlib.figure import Figure

    from cnnzoo.data.mask_pictures import class_palette

    palette = class_palette(len(class_names))
    columns = ["image", "ground truth", *predictions]
    fig = Figure(figsize=(1.6 * len(columns), 1.6 * EXAMPLES))
    axes = fig.subplots(EXAMPLES, len(columns))
    for row in range(EXAMPLES):
        panels = [
            dataset.sample(row)[0],
            palette[truth[row].numpy()],
            *(palette[p[row].numpy()] for p in predictions.values()),
        ]
        for column, panel in enumerate(panels):
            ax = axes[row, column]
            ax.imshow(panel, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(columns[column], fontsize=9)
    run.save_figure(
        fig, "fcn_predictions.png", "Test images, ground truth and each FCN's prediction", dpi=80
    )
