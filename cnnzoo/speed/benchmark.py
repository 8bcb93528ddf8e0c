"""How fast a network runs on this machine, alone or against torchvision's copy of it.

For each network the benchmark reports images per second, the latency of one
batch (median and 90th percentile), the FLOPs one image costs (counted by
:mod:`cnnzoo.measure.flops`: convolutions and matrix products, forward and,
in training, backward), the GFLOP/s achieved, and the model-FLOPs
utilisation (MFU): achieved GFLOP/s over the peak of a large matrix product
in the same dtype, measured first on this machine. MFU says how much of the
hardware a network uses, which raw images/s cannot.

Training mode times what a training step costs: the engine's own
:func:`~cnnzoo.train.step.train_step` (forward, loss, backward and an
SGD-with-momentum update). Inference mode runs under
``torch.inference_mode`` on cnnzoo's inference path, which folds every
batch norm into the convolution before it (:mod:`cnnzoo.speed.fold`) when
that measures faster for the network and input at hand.

Each network runs in its own default memory layout unless one is asked for:
torchvision's NCHW, and cnnzoo's NHWC for training on CPU
(:mod:`cnnzoo.device.memory_format`) and, for inference, whichever of NCHW and NHWC
measures faster for the network and input at hand. ``channels_last=True``
(or ``False``) runs both networks NHWC (or NCHW), which compares the
networks alone with the layout taken out.

Against torchvision, both networks are built in one process with the same
weights (torchvision's, mapped onto ours by the registry's converter, so both
compute the same function), get the same settings and the same images, and
are timed *interleaved*, one step of each in turn, the order alternating
every round, so that load from other processes and frequency changes fall on
both alike. Each round gives one ratio, torchvision's step time over ours,
measured seconds apart; the speed-up is the median of these paired ratios,
and their 10th and 90th percentiles say how much the machine's noise moved it.

Against onnxruntime (:func:`benchmark_runtimes`), the runtime a network is
often deployed with, the same pairing compares cnnzoo's PyTorch paths, eager
and ``torch.compile``, with onnxruntime running cnnzoo's own ONNX export of
the same weights on the same number of threads (:mod:`cnnzoo.speed.runners`).
"""

from __future__ import annotations

import copy
import itertools
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cnnzoo.device.memory_format import layout_name, resolve_channels_last, to_channels_last
from cnnzoo.device.placement import autocast
from cnnzoo.errors import CnnzooError
from cnnzoo.measure.flops import flop_counter
from cnnzoo.measure.load import LoadMeter, MachineLoad
from cnnzoo.measure.timing import interleaved_latencies, percentile
from cnnzoo.models.registry import ModelEntry, check_input_size, create_model, get_model_entry
from cnnzoo.runs.config import TrainConfig
from cnnzoo.speed.fold import fold_conv_batchnorm
from cnnzoo.speed.runners import (
    Runner,
    compiled_runner,
    eager_runner,
    fastest_eager,
    onnxruntime_runner,
)
from cnnzoo.tasks import get_task
from cnnzoo.train.step import ModelOutput, StepRecipe, combined_loss, train_step

MODES = ("train", "infer")
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}
# torchvision constructor options that build the architecture our network mirrors.
TORCHVISION_OPTIONS: dict[str, dict[str, Any]] = {
    "googlenet": {"aux_logits": True, "init_weights": True},
}


@dataclass(frozen=True)
class BenchmarkSettings:
    """What to time and how; the command line's flags map onto these fields."""

    mode: str = "infer"  # "train" (forward + loss + backward + SGD step) or "infer"
    batch_size: int = 8
    input_size: tuple[int, int, int] | None = None  # (C, H, W); None: the size the paper used
    precision: str = "fp32"  # "fp32", or "bf16" autocast on the matrix products
    # NHWC (True) or NCHW (False) for weights and images of both networks; None: each
    # network's own default (see the module docstring)
    channels_last: bool | None = None
    compile: bool = False  # torch.compile both networks first (compile time is not timed)
    fold_batchnorm: bool = True  # inference: fold batch norms into convolutions (ours only)
    threads: int | None = None  # torch intra-op threads; None keeps torch's default
    warmup: int = 3  # untimed steps per network before timing
    iters: int = 10  # timed steps per network
    num_classes: int | None = None  # None: 1000 for classifiers, 21 for segmentation


@dataclass
class BenchmarkResult:
    """One network's numbers; ``torchvision_*`` are set by a comparison run."""

    model: str
    mode: str
    batch_size: int
    input_size: tuple[int, int, int]
    precision: str
    channels_last: bool  # the layout ours ran in
    compile: bool
    threads: int
    images_per_second: float
    latency_p50_ms: float
    latency_p90_ms: float
    flops_per_image: float  # counted multiply-adds x 2; a training step includes backward
    gflops_per_second: float
    peak_gflops_per_second: float  # matrix-product peak of this machine in this dtype
    mfu: float  # gflops_per_second / peak_gflops_per_second
    torchvision_images_per_second: float | None = None
    torchvision_channels_last: bool | None = None  # the layout torchvision's copy ran in
    speedup_vs_torchvision: float | None = None  # > 1: ours is faster
    speedup_p10: float | None = None  # 10th percentile of the per-round ratios
    speedup_p90: float | None = None  # 90th percentile of the per-round ratios
    notes: list[str] = field(default_factory=list)
    load: MachineLoad | None = None  # how busy the machine was while the networks were timed

    def as_dict(self) -> dict[str, Any]:
        return _with_load(asdict(self), self.load)


def _with_load(fields: dict[str, Any], load: MachineLoad | None) -> dict[str, Any]:
    """A result's fields for JSON, its load with the ``busy`` verdict spelled out."""
    return {**fields, "load": None if load is None else load.to_dict()}


def measure_matmul_peak(precision: str = "fp32", size: int = 1024, repeats: int = 10) -> float:
    """GFLOP/s of the fastest of ``repeats`` square matrix products, a practical peak.

    A 1024x1024 product is large enough to reach the BLAS kernel's full
    speed and small enough to take milliseconds.
    """
    dtype = _dtype(precision)
    left, right = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    torch.mm(left, right)
    fastest = float("inf")
    deadline = time.perf_counter() + 0.25  # on a busy machine, keep trying for a quiet moment
    for attempt in itertools.count():
        if attempt >= repeats and time.perf_counter() > deadline:
            break
        start = time.perf_counter()
        torch.mm(left, right)
        fastest = min(fastest, time.perf_counter() - start)
    return 2 * size**3 / fastest / 1e9


def benchmark_models(
    names: list[str], settings: BenchmarkSettings, *, vs_torchvision: bool = False
) -> list[BenchmarkResult]:
    """Benchmark each registered network in ``names`` (see the module docstring)."""
    _check_settings(settings)
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    entries = [get_model_entry(name) for name in names]
    if vs_torchvision:
        without = [e.name for e in entries if e.torchvision is None]
        if len(without) == len(entries):
            raise CnnzooError(
                f"torchvision has no copy of {', '.join(without)}; compare a network it has, "
                "such as resnet50 (`cnnzoo list` shows which)"
            )
    peak = measure_matmul_peak(settings.precision)
    with LoadMeter() as meter:
        results = [
            _benchmark_one(entry, settings, peak, vs_torchvision and entry.torchvision is not None)
            for entry in entries
        ]
    # On a shared machine one measurement of the peak can land in a busy moment: measure
    # again after the networks and keep the higher, which is closer to what the core can do.
    peak = max(peak, measure_matmul_peak(settings.precision))
    for result in results:
        result.peak_gflops_per_second = peak
        result.mfu = result.gflops_per_second / peak
        result.load = meter.load
    return results


@dataclass
class FastPathResult:
    """One way of running a network, timed interleaved with the plain fp32 way."""

    model: str
    mode: str
    fast_path: str  # e.g. "channels_last + bf16"; "baseline" is fp32, NCHW, eager, no folding
    images_per_second: float
    latency_p50_ms: float
    speedup: float  # median over rounds of baseline step time / this path's step time
    speedup_p10: float
    speedup_p90: float
    load: MachineLoad | None = None  # how busy the machine was while the paths were timed

    def as_dict(self) -> dict[str, Any]:
        return _with_load(asdict(self), self.load)


def benchmark_fast_paths(name: str, settings: BenchmarkSettings) -> list[FastPathResult]:
    """Time each fast path of ``name`` against the plain fp32 eager network, interleaved.

    The paths are channels_last, bf16 autocast, both, and for inference
    batch-norm folding alone and with the others; ``settings.compile`` adds
    ``torch.compile`` on top of the fastest combination. ``settings``'
    own precision, layout and folding are ignored: every path sets its own.
    """
    _check_settings(settings)
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    entry = get_model_entry(name)
    input_size, num_classes = _input_and_classes(entry, settings, vs_torchvision=False)
    base = replace(settings, precision="fp32", channels_last=False, compile=False)
    paths = {
        "baseline": replace(base, fold_batchnorm=False),
        "channels_last": replace(base, fold_batchnorm=False, channels_last=True),
        "bf16": replace(base, fold_batchnorm=False, precision="bf16"),
        "channels_last + bf16": replace(
            base, fold_batchnorm=False, channels_last=True, precision="bf16"
        ),
    }
    if settings.mode == "infer":
        paths["fold"] = replace(base, fold_batchnorm=True)
        paths["fold + channels_last"] = replace(base, fold_batchnorm=True, channels_last=True)
        paths["fold + channels_last + bf16"] = replace(
            base, fold_batchnorm=True, channels_last=True, precision="bf16"
        )
    if settings.compile:
        fastest = list(paths)[-1]
        paths[f"{fastest} + compile"] = replace(paths[fastest], compile=True)
    template = create_model(name, num_classes=num_classes, in_channels=input_size[0])
    images, targets = _batch(entry, settings.batch_size, input_size, num_classes)
    steps = []
    for path in paths.values():
        model = copy.deepcopy(template)
        if path.mode == "infer" and path.fold_batchnorm:
            model = fold_conv_batchnorm(model, images[:1])
        steps.append(_make_step(model, images, targets, path))
    with LoadMeter() as meter:
        latencies = interleaved_latencies(
            steps, settings.warmup, settings.iters, f"{name} fast paths"
        )
    results = []
    for label, times in zip(paths, latencies):
        ratios = [base_time / time for base_time, time in zip(latencies[0], times)]
        results.append(
            FastPathResult(
                model=name,
                mode=settings.mode,
                fast_path=label,
                images_per_second=settings.batch_size / statistics.median(times),
                latency_p50_ms=statistics.median(times) * 1e3,
                speedup=statistics.median(ratios),
                speedup_p10=percentile(ratios, 0.1),
                speedup_p90=percentile(ratios, 0.9),
                load=meter.load,
            )
        )
    return results


@dataclass
class RuntimeResult:
    """One network's inference on each runtime, timed interleaved: ours against onnxruntime."""

    model: str
    batch_size: int
    input_size: tuple[int, int, int]
    threads: int  # intra-op threads of every runtime: the eager runner's measured choice
    eager_images_per_second: float
    eager_path: str  # what the eager runner chose and measured
    compiled_images_per_second: float | None  # None: torch.compile failed (see notes)
    compile_seconds: float | None  # compiling and the first call, paid once per process
    onnxruntime_images_per_second: float
    export_seconds: float  # ONNX export and loading the session
    best_ours: str  # "eager" or "compiled": the faster of cnnzoo's PyTorch paths
    ours_vs_onnxruntime: float  # median per-round onnxruntime time / best ours; >= 1: ours faster
    ratio_p10: float  # 10th percentile of the per-round ratios
    ratio_p90: float
    notes: list[str] = field(default_factory=list)
    load: MachineLoad | None = None  # how busy the machine was while this network was timed

    def as_dict(self) -> dict[str, Any]:
        return _with_load(asdict(self), self.load)


def benchmark_runtimes(names: list[str], settings: BenchmarkSettings) -> list[RuntimeResult]:
    """Time each network's inference eager, compiled and in onnxruntime, interleaved.

    The three run the same weights on the same images: cnnzoo's fastest eager
    path (:func:`~cnnzoo.speed.runners.eager_runner`), ``torch.compile`` with
    inductor freezing, and onnxruntime on cnnzoo's own ONNX export, all on
    the thread count the eager runner measured fastest (all or one). Setting
    each up (choosing the eager variant, compiling, exporting) is timed apart
    from the rounds; ``settings``'
    precision must be fp32 (onnxruntime runs the exported fp32 graph), and its
    layout, folding and compile fields are left to the runners.
    """
    _check_settings(settings)
    if settings.mode != "infer" or settings.precision != "fp32":
        raise CnnzooError(
            "--vs-onnxruntime times fp32 inference; use --mode infer --precision fp32"
        )
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    return [_benchmark_runtimes_one(get_model_entry(name), settings) for name in names]


def _set_up(make: Callable[[], Runner]) -> tuple[Runner, float]:
    start = time.perf_counter()
    runner = make()
    return runner, time.perf_counter() - start


def _benchmark_runtimes_one(entry: ModelEntry, settings: BenchmarkSettings) -> RuntimeResult:
    input_size, num_classes = _input_and_classes(entry, settings, vs_torchvision=False)
    model = create_model(entry.name, num_classes=num_classes, in_channels=input_size[0]).eval()
    images, _ = _batch(entry, settings.batch_size, input_size, num_classes)
    eager = eager_runner(model, images)
    notes = []
    try:
        compiled, compile_seconds = _set_up(lambda: compiled_runner(model, images, eager.threads))
    except CnnzooError as error:
        compiled, compile_seconds = None, None
        notes.append(str(error))
    onnx, export_seconds = _set_up(lambda: onnxruntime_runner(model, images, eager.threads))
    runners = [runner for runner in (eager, compiled, onnx) if runner is not None]
    with LoadMeter() as meter:
        latencies = interleaved_latencies(
            [lambda runner=runner: runner.forward(images) for runner in runners],
            settings.warmup,
            settings.iters,
            f"{entry.name} eager, compiled, onnxruntime",
        )
    medians = [statistics.median(times) for times in latencies]
    best = min(range(len(runners) - 1), key=medians.__getitem__)  # onnxruntime comes last
    ratios = [theirs / ours for ours, theirs in zip(latencies[best], latencies[-1])]
    return RuntimeResult(
        model=entry.name,
        batch_size=settings.batch_size,
        input_size=input_size,
        threads=eager.threads,
        eager_images_per_second=settings.batch_size / medians[0],
        eager_path=eager.description,
        compiled_images_per_second=settings.batch_size / medians[1] if compiled else None,
        compile_seconds=compile_seconds,
        onnxruntime_images_per_second=settings.batch_size / medians[-1],
        export_seconds=export_seconds,
        best_ours=runners[best].runtime,
        ours_vs_onnxruntime=statistics.median(ratios),
        ratio_p10=percentile(ratios, 0.1),
        ratio_p90=percentile(ratios, 0.9),
        notes=notes,
        load=meter.load,
    )


def _input_and_classes(
    entry: ModelEntry, settings: BenchmarkSettings, *, vs_torchvision: bool
) -> tuple[tuple[int, int, int], int]:
    input_size = settings.input_size or entry.input_size
    num_classes = settings.num_classes or get_task(entry.task).default_num_classes
    if vs_torchvision and input_size[0] != 3:
        raise CnnzooError(
            f"torchvision's {entry.torchvision} takes 3-channel images; use --input 3,H,W"
        )
    check_input_size(entry.name, entry.min_size, input_size)
    return tuple(input_size), num_classes


def _benchmark_one(
    entry: ModelEntry, settings: BenchmarkSettings, peak: float, vs_torchvision: bool
) -> BenchmarkResult:
    input_size, num_classes = _input_and_classes(entry, settings, vs_torchvision=vs_torchvision)
    ours = create_model(entry.name, num_classes=num_classes, in_channels=input_size[0])
    notes = []
    theirs = None
    if vs_torchvision:
        theirs = _torchvision_model(entry, num_classes)
        ours.load_state_dict(entry.from_torchvision(theirs.state_dict()))
    images, targets = _batch(entry, settings.batch_size, input_size, num_classes)
    if settings.mode == "infer":
        ours, ours_layout = _fastest_inference(ours, images, targets, settings, notes)
    else:
        ours_layout = resolve_channels_last(settings.channels_last, "cpu")
        if settings.channels_last is None and ours_layout:
            notes.append("trains NHWC, cnnzoo's default layout on CPU")
    ours_settings = replace(settings, channels_last=ours_layout)
    theirs_settings = replace(settings, channels_last=bool(settings.channels_last))
    flops = _count_flops(ours, images, targets, ours_settings) / settings.batch_size

    steps = [_make_step(ours, images, targets, ours_settings)]
    if theirs is not None:
        steps.append(_make_step(theirs, images, targets, theirs_settings))
    latencies = interleaved_latencies(
        steps, settings.warmup, settings.iters, f"{entry.name} {settings.mode}"
    )
    p50 = statistics.median(latencies[0])
    images_per_second = settings.batch_size / p50
    achieved = flops * images_per_second / 1e9
    result = BenchmarkResult(
        model=entry.name,
        mode=settings.mode,
        batch_size=settings.batch_size,
        input_size=tuple(input_size),
        precision=settings.precision,
        channels_last=ours_layout,
        compile=settings.compile,
        threads=torch.get_num_threads(),
        images_per_second=images_per_second,
        latency_p50_ms=p50 * 1e3,
        latency_p90_ms=percentile(latencies[0], 0.9) * 1e3,
        flops_per_image=flops,
        gflops_per_second=achieved,
        peak_gflops_per_second=peak,
        mfu=achieved / peak,
        notes=notes,
    )
    if theirs is not None:
        result.torchvision_images_per_second = settings.batch_size / statistics.median(latencies[1])
        result.torchvision_channels_last = theirs_settings.channels_last
        ratios = [their / our for our, their in zip(latencies[0], latencies[1])]
        result.speedup_vs_torchvision = statistics.median(ratios)
        result.speedup_p10 = percentile(ratios, 0.1)
        result.speedup_p90 = percentile(ratios, 0.9)
    return result


def _fastest_inference(
    model: nn.Module, images: Tensor, targets: Tensor, settings: BenchmarkSettings, notes: list
) -> tuple[nn.Module, bool]:
    """Ours for inference: the runners' fastest eager variant (folded or not, NCHW or NHWC).

    :func:`~cnnzoo.speed.runners.fastest_eager` times each variant the
    settings allow (folding unless ``fold_batchnorm`` is off, both layouts
    unless ``channels_last`` names one) for ``warmup`` rounds (at least
    three) with the benchmark's own step, so precision applies; the notes say
    what was chosen.
    """

    def make_step(variant: nn.Module, layout: bool) -> Callable[[], None]:
        return _make_step(variant, images, targets, replace(settings, channels_last=layout))

    choice = fastest_eager(
        model,
        images,
        make_step,
        fold=settings.fold_batchnorm,
        channels_last=settings.channels_last,
        rounds=max(3, settings.warmup),
    )
    if choice.foldable_pairs:
        notes.append(
            "batch norm folded into convolutions"
            if choice.folded
            else "batch norms kept: folding measured slower on this input"
        )
    if settings.channels_last is None:
        notes.append(f"infers {layout_name(choice.channels_last)}: measured faster on this input")
    return choice.model, choice.channels_last


def _check_settings(settings: BenchmarkSettings) -> None:
    if settings.mode not in MODES:
        raise CnnzooError(f"mode must be one of {MODES}, not {settings.mode!r}")
    _dtype(settings.precision)
    for label in ("batch_size", "iters"):
        if getattr(settings, label) < 1:
            raise CnnzooError(f"{label} must be at least 1, got {getattr(settings, label)}")
    if settings.warmup < 0:
        raise CnnzooError(f"warmup must be 0 or more, got {settings.warmup}")
    if settings.threads is not None and settings.threads < 1:
        raise CnnzooError(f"threads must be at least 1, got {settings.threads}")
    if settings.mode == "train" and settings.batch_size < 2:
        raise CnnzooError("training needs a batch of at least 2 (batch norm); use --batch-size 2")


def _dtype(precision: str) -> torch.dtype:
    if precision not in PRECISIONS:
        raise CnnzooError(f"precision must be one of {tuple(PRECISIONS)}, not {precision!r}")
    return PRECISIONS[precision]


def _torchvision_model(entry: ModelEntry, num_classes: int) -> nn.Module:
    import torchvision

    return torchvision.models.get_model(
        entry.torchvision,
        weights=None,
        num_classes=num_classes,
        **TORCHVISION_OPTIONS.get(entry.name, {}),
    )


def _batch(
    entry: ModelEntry, batch_size: int, input_size: tuple[int, int, int], num_classes: int
) -> tuple[Tensor, Tensor]:
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(batch_size, *input_size, generator=generator)
    label_shape = (batch_size,) if entry.task == "classification" else (batch_size, *input_size[1:])
    return images, torch.randint(0, num_classes, label_shape, generator=generator)


def training_loss(output: ModelOutput, targets: Tensor) -> Tensor:
    """The loss a training step computes: the engine's, with cross-entropy and its aux weight."""
    return combined_loss(output, targets, F.cross_entropy, TrainConfig.aux_weight)[0]


def _prepared(model: nn.Module, images: Tensor, settings: BenchmarkSettings) -> tuple:
    model.train(settings.mode == "train")
    if settings.channels_last:  # None (each network's default) is NCHW here
        model = to_channels_last(model, images[:2])
        images = images.contiguous(memory_format=torch.channels_last)
    if settings.compile:
        model = torch.compile(model)
    return model, images


def _make_step(
    model: nn.Module, images: Tensor, targets: Tensor, settings: BenchmarkSettings
) -> Callable[[], None]:
    model, images = _prepared(model, images, settings)
    if settings.mode == "infer":

        def infer() -> None:
            with torch.inference_mode(), autocast(images.device, settings.precision):
                model(images)

        return infer

    # The engine's own step (forward, loss with auxiliary heads, backward, update), with
    # SGD and momentum; no schedule, so every timed step does the same work.
    recipe = StepRecipe(
        loss_fn=F.cross_entropy,
        optimizer=torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9),
        aux_weight=TrainConfig.aux_weight,
        precision=settings.precision,
    )

    def train() -> None:
        train_step(model, images, targets, recipe)

    return train


def _count_flops(
    model: nn.Module, images: Tensor, targets: Tensor, settings: BenchmarkSettings
) -> float:
    """FLOPs of one step on ``images`` (a training step: forward and backward)."""
    counter = flop_counter()
    uncompiled = replace(settings, compile=False)
    model, images = _prepared(model, images, uncompiled)
    if settings.mode == "infer":
        with torch.inference_mode(), counter:
            model(images)
    else:
        with counter:
            training_loss(model(images), targets).backward()
        model.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())
