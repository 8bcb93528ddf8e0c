"""SegNet, U-Net and FCN side by side: parameters, memory, speed and accuracy.

* Badrinarayanan, Kendall, Cipolla, "SegNet", 2015, arXiv:1511.00561, section
  4 and Table 6: the decoder upsamples with the encoder's max-pooling indices
  instead of keeping encoder feature maps or learning deconvolutions, so
  SegNet needs less memory at inference than FCN and DeconvNet.
* Ronneberger, Fischer, Brox, "U-Net", 2015, arXiv:1505.04597: the expanding
  path concatenates the encoder's whole feature map at every level, for
  precise localisation, at the price of keeping those maps.
* Long, Shelhamer, Darrell, "Fully Convolutional Networks", 2015,
  arXiv:1411.4038: a classifier with learned upsampling and two skips.

First the papers' networks (``segnet``, ``unet``, ``fcn8s``; 11 classes, a
360x480 CamVid image) are measured on the meta device, where nothing is
computed: parameters, FLOPs, the peak of the activations alive during an
inference pass (:class:`LiveActivationBytes`) and the activations a training
step keeps for its backward pass (:func:`saved_activation_bytes`). Then
configurations of the three with one width (1/8 of the papers') are trained on the synthetic
shapes with one recipe and compared by forward latency, mean IoU and
boundary F1.
"""

from __future__ import annotations

import statistics
import time
import weakref
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from cnnzoo.experiments.base import ExperimentRun, describe_budget, register_experiment
from cnnzoo.experiments.fcn_skips import (
    boundary_f1,
    fcn_variant,
    load_shapes,
    predict,
    train_segmenter,
)
from cnnzoo.measure.flops import count_flops, parameter_count
from cnnzoo.measure.modes import evaluating
from cnnzoo.models.classification.vgg import VGG_CONFIGS
from cnnzoo.models.registry import create_model
from cnnzoo.models.segmentation.segnet import SegNet, SegNetConfig

NETWORKS = ("segnet", "unet", "fcn8s")
PAPER_INPUT = (3, 360, 480)  # a CamVid image, SegNet's benchmark (section 4)
PAPER_CLASSES = 11  # CamVid's classes
MEBIBYTE = 2**20

# Trained on shapes: each paper's network at 1/8 of its width (SegNet's and FCN-8s's VGG-16
# encoders 8-64 channels, U-Net's paths 8-128), cheap enough to train on a CPU.
WIDTH_DIVISOR = 8
SIDE = {"quick": 32, "full": 64}
RECIPE = {
    "quick": dict(iterations=2, batch_size=16),
    "full": dict(epochs=6, batch_size=16),
}
LATENCY_RUNS = {"quick": 3, "full": 20}


class LiveActivationBytes(TorchDispatchMode):
    """Tracks the bytes of tensors alive during a forward pass, and their peak.

    Every operation's outputs are counted once per storage (views and
    in-place results share their input's) and released when the last tensor
    on that storage is freed, as CPython frees it. Tensors that existed
    before (parameters, the input) are not counted. Works on the meta device,
    where sizes are known and nothing is computed.
    """

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._tensors_per_storage: dict[int, int] = {}

    def _release(self, key: int, size: int) -> None:
        self._tensors_per_storage[key] -= 1
        if self._tensors_per_storage[key] == 0:
            del self._tensors_per_storage[key]
            self.live -= size

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        output = func(*args, **(kwargs or {}))
        for tensor in tree_flatten(output)[0]:
            if not isinstance(tensor, Tensor):
                continue
            storage = tensor.untyped_storage()
            key, size = storage._cdata, storage.nbytes()
            if key not in self._tensors_per_storage:
                self._tensors_per_storage[key] = 0
                self.live += size
                self.peak = max(self.peak, self.live)
            self._tensors_per_storage[key] += 1
            weakref.finalize(tensor, self._release, key, size)
        return output


def inference_activation_bytes(model: nn.Module, input_shape: Sequence[int]) -> int:
    """Peak bytes of activations alive while ``model`` segments one image (no gradients)."""
    device = next(model.parameters()).device
    image = torch.zeros(1, *input_shape, device=device)
    tracker = LiveActivationBytes()
    with evaluating(model), torch.no_grad(), tracker:
        model(image)
    return tracker.peak


def saved_activation_bytes(model: nn.Module, input_shape: Sequence[int]) -> int:
    """Bytes of activations a training forward pass of one image saves for its backward pass.

    Counted once per storage, without the parameters (which autograd also saves).
    """
    device = next(model.parameters()).device
    parameters = {p.untyped_storage()._cdata for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(tensor: Tensor) -> Tensor:
        storage = tensor.untyped_storage()
        if storage._cdata not in parameters:
            saved[storage._cdata] = storage.nbytes()
        return tensor

    image = torch.zeros(1, *input_shape, device=device)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model(image)
    return sum(saved.values())


def forward_latency(model: nn.Module, input_shape: Sequence[int], runs: int) -> float:
    """Median seconds of one inference forward pass of a single image, after a warm-up."""
    image = torch.randn(1, *input_shape)
    model.eval()
    times = []
    with torch.inference_mode():
        model(image)
        for _ in range(runs):
            started = time.perf_counter()
            model(image)
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def _upsampling_layers(model: nn.Module) -> dict[str, int]:
    """How each network upsamples: learned (transposed convolutions) or by pooling indices."""
    return {
        "transposed_convolutions": sum(isinstance(m, nn.ConvTranspose2d) for m in model.modules()),
        "max_unpooling": sum(isinstance(m, nn.MaxUnpool2d) for m in model.modules()),
    }


def _vgg16_stages(divisor: int) -> tuple[tuple[int, ...], ...]:
    """VGG-16's convolution widths (configuration D) per max-pooling, divided by ``divisor``."""
    stages, current = [], []
    for value in VGG_CONFIGS["D"]:
        if value == "M":
            stages.append(tuple(current))
            current = []
        else:
            current.append(int(value) // divisor)
    return tuple(stages)


def _trainable_networks(num_classes: int, seed: int) -> dict[str, nn.Module]:
    """The three papers' networks at 1/``WIDTH_DIVISOR`` of their width, seeded alike."""
    torch.manual_seed(seed)
    # SegNet (VGG-16-BN encoder and its mirror), narrowed: SegNet's own building blocks.
    segnet_config = SegNetConfig(_vgg16_stages(WIDTH_DIVISOR), 3, True, True, None)
    networks: dict[str, nn.Module] = {"segnet": SegNet(segnet_config, num_classes, 3)}
    torch.manual_seed(seed)
    networks["unet"] = create_model(
        "unet", num_classes=num_classes, in_channels=3, width=64 // WIDTH_DIVISOR, batch_norm=True
    )
    torch.manual_seed(seed)
    networks["fcn8s"] = fcn_variant("fcn8s", num_classes, WIDTH_DIVISOR)
    return networks


@register_experiment(
    "segnet-vs-unet-vs-fcn",
    title="SegNet, U-Net and FCN-8s: parameters, memory, speed and accuracy",
    claim="SegNet's index-based upsampling needs less inference memory than FCN's and U-Net's "
    "kept feature maps; U-Net's and SegNet's full decoders segment more finely than FCN-8s.",
)
def segnet_vs_unet_vs_fcn(run: ExperimentRun) -> None:
    _papers_networks(run)
    _trained_networks(run)


def _papers_networks(run: ExperimentRun) -> None:
    measured: dict[str, dict[str, Any]] = {}
    for name in NETWORKS:
        with torch.device("meta"):
            model = create_model(name, num_classes=PAPER_CLASSES, in_channels=PAPER_INPUT[0])
        params = parameter_count(model)
        measured[name] = {
            "params": params,
            "parameter_bytes": 4 * params,
            "flops": count_flops(model, PAPER_INPUT).total,
            "inference_activation_bytes": inference_activation_bytes(model, PAPER_INPUT),
            "training_activation_bytes": saved_activation_bytes(model, PAPER_INPUT),
            **_upsampling_layers(model),
        }
    run.results["papers_networks"] = {"input": list(PAPER_INPUT), "networks": measured}
    run.write(
        f"**The papers' networks** ({PAPER_CLASSES} classes, one {PAPER_INPUT[1]}x"
        f"{PAPER_INPUT[2]} RGB image, float32), measured on the meta device: SegNet with "
        "its VGG-16-BN encoder, the original U-Net (64 to 1024 channels), FCN-8s on VGG-16 "
        "with fc6/fc7 and its 100-pixel input padding. *Inference activations*: the peak of "
        "the tensors alive during a forward pass without gradients (what must fit beside "
        "the weights); *training activations*: what a forward pass saves for backward."
    )
    run.table(
        [
            "network",
            "params",
            "weights MB",
            "GFLOPs",
            "inference activations MB",
            "training activations MB",
            "upsampling",
        ],
        [
            [
                name,
                m["params"],
                f"{m['parameter_bytes'] / MEBIBYTE:.0f}",
                f"{m['flops'] / 1e9:.0f}",
                f"{m['inference_activation_bytes'] / MEBIBYTE:.0f}",
                f"{m['training_activation_bytes'] / MEBIBYTE:.0f}",
                f"{m['max_unpooling']} unpoolings"
                if m["max_unpooling"]
                else f"{m['transposed_convolutions']} transposed convs",
            ]
            for name, m in measured.items()
        ],
    )
    run.check(
        "SegNet upsamples only by max-unpooling (5, no learned upsampling); U-Net (4) and "
        "FCN-8s (3) learn theirs with transposed convolutions",
        [(measured[n]["max_unpooling"], measured[n]["transposed_convolutions"]) for n in NETWORKS]
        == [(5, 0), (0, 4), (0, 3)],
    )
    segnet = measured["segnet"]["inference_activation_bytes"]
    others = {n: measured[n]["inference_activation_bytes"] for n in ("unet", "fcn8s")}
    run.finding(
        "SegNet needs the least activation memory at inference",
        all(segnet < other for other in others.values()),
        f"SegNet {segnet / MEBIBYTE:.0f} MB, U-Net {others['unet'] / MEBIBYTE:.0f} MB, "
        f"FCN-8s {others['fcn8s'] / MEBIBYTE:.0f} MB",
    )


def _trained_networks(run: ExperimentRun) -> None:
    side = SIDE[run.mode]
    measured = _train_and_measure(run, side)
    run.results["trained"] = {
        "image_size": side,
        "width_divisor": WIDTH_DIVISOR,
        "recipe": RECIPE[run.mode],
        "networks": measured,
    }
    _report_trained(run, measured, side)
    _plot(run, measured)
    run.check(
        "every trained network's scores are valid: mIoU and boundary F1 in [0, 1], latency > 0",
        all(
            0 <= m["miou"] <= 1 and 0 <= m["boundary_f1_2px"] <= 1 and m["latency_seconds"] > 0
            for m in measured.values()
        ),
    )
    fcn = measured["fcn8s"]["boundary_f1_2px"]
    run.finding(
        "U-Net's and SegNet's decoders place boundaries better than FCN-8s's upsampling",
        all(measured[n]["boundary_f1_2px"] > fcn for n in ("segnet", "unet")),
        ", ".join(f"{n} {m['boundary_f1_2px']:.4f}" for n, m in measured.items()),
    )


def _train_and_measure(run: ExperimentRun, side: int) -> dict[str, dict[str, Any]]:
    """Each narrowed network trained on shapes, then measured: cost, memory, speed, scores."""
    shape = (3, side, side)
    data, _generated_test = load_shapes(side, run.seed)
    truth = data.test.tensors[1]
    measured: dict[str, dict[str, Any]] = {}
    networks = _trainable_networks(len(data.class_names), run.seed)
    for name, model in run.progress(networks.items(), "training"):
        started = time.perf_counter()
        metrics = train_segmenter(model, data, RECIPE[run.mode], lr=1e-3, seed=run.seed)
        train_seconds = time.perf_counter() - started
        prediction = predict(model, data.test)
        measured[name] = {
            "params": parameter_count(model),
            "flops": count_flops(model, shape).total,
            "inference_activation_bytes": inference_activation_bytes(model, shape),
            "training_activation_bytes": saved_activation_bytes(model, shape),
            "latency_seconds": forward_latency(model, shape, LATENCY_RUNS[run.mode]),
            "train_seconds": train_seconds,
            "miou": metrics["miou"],
            "pixel_acc": metrics["pixel_acc"],
            "boundary_f1_2px": float(boundary_f1(prediction, truth, 2).mean()),
        }
    return measured


def _report_trained(run: ExperimentRun, measured: dict[str, dict[str, Any]], side: int) -> None:
    run.write(
        f"**Trained on shapes** ({side}x{side}, 1,000 training and 200 test images, 4 "
        "classes): the three papers' networks at 1/"
        f"{WIDTH_DIVISOR} of their width -- SegNet (VGG-16-BN encoder and its mirror "
        "decoder), U-Net (with batch norm) and FCN-8s (VGG-16-BN encoder as in "
        "`fcn-skips`, without fc6/fc7); one recipe "
        f"(Adam lr 1e-3, cosine, weight decay 1e-4, {describe_budget(RECIPE[run.mode])}, no "
        f"augmentation, seed {run.seed}), test metrics of the last weights. Latency: median of "
        f"{LATENCY_RUNS[run.mode]} forward passes of one image on this machine's CPU."
    )
    run.table(
        [
            "network",
            "params",
            "MFLOPs",
            "inference act. KB",
            "training act. KB",
            "latency ms",
            "mIoU",
            "boundary F1 (2 px)",
        ],
        [
            [
                name,
                m["params"],
                f"{m['flops'] / 1e6:.0f}",
                f"{m['inference_activation_bytes'] / 1024:.0f}",
                f"{m['training_activation_bytes'] / 1024:.0f}",
                f"{m['latency_seconds'] * 1e3:.1f}",
                f"{m['miou']:.4f}",
                f"{m['boundary_f1_2px']:.4f}",
            ]
            for name, m in measured.items()
        ],
    )


def _plot(run: ExperimentRun, measured: dict[str, dict[str, Any]]) -> None:
    from matplotlib.figure import Figure

    names = list(measured)
    panels = [
        ("params", 1e6, "parameters (M)"),
        ("inference_activation_bytes", 1024, "inference activations (KB)"),
        ("latency_seconds", 1e-3, "latency (ms)"),
        ("miou", 1, "test mIoU"),
        ("boundary_f1_2px", 1, "boundary F1 (2 px)"),
    ]
    fig = Figure(figsize=(2.3 * len(panels), 2.8))
    axes = fig.subplots(1, len(panels))
    colors = ["tab:purple", "tab:green", "tab:blue"]
    for ax, (key, unit, label) in zip(axes, panels):
        ax.bar(names, [measured[n][key] / unit for n in names], color=colors)
        ax.set_title(label, fontsize=9)
        ax.tick_params(axis="x", labelsize=8, rotation=30)
    run.save_figure(fig, "segnet_unet_fcn.png", "The trained networks side by side on shapes")
