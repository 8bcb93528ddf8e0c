"""Running a trained network for inference the fastest way this machine offers.

Three runtimes compute the same function with different machinery:

* **eager**: PyTorch op by op, with every batch norm folded into the
  convolution before it (:mod:`cnnzoo.speed.fold`, Ioffe & Szegedy 2015,
  sec. 3.1) and the weights in NCHW or NHWC, whichever of these variants
  measures fastest on the batch at hand (:func:`fastest_eager`).
* **compiled**: ``torch.compile`` with inductor and *freezing*: the weights
  become constants, so inductor folds batch norms itself, pre-packs
  convolution and linear weights into oneDNN's blocked layouts once and fuses
  the pointwise operations around them. Compiling takes seconds to minutes
  and is paid once per process: the compiled network is kept per model and
  input shape. Batches of another size are padded or split to the compiled
  size, so no batch recompiles.
* **onnxruntime**: cnnzoo's own ONNX export (:mod:`cnnzoo.speed.export`,
  batch axis dynamic) run by onnxruntime, an optional extra
  (``pip install 'cnnzoo[export]'``).

Each runtime runs on the same number of threads. The eager runner chooses it
by measuring: all of PyTorch's threads, or one. On a machine other processes
keep busy, an OpenMP thread pool waits at every operator's barrier for a
thread that is not running: MobileNet-v2 at batch 8 took 1.80 s a batch on 2
threads and 0.23 s on one, with other processes using 1.34 of the 2 cores.
onnxruntime's pool, which lets the calling thread take the work, lost less
(0.11 s and 0.10 s).

``auto`` sets each available runtime up, times them interleaved on the
example batch (:mod:`cnnzoo.measure.timing`) and keeps the fastest. Which one
wins depends on the network, the batch and how busy the machine is: on 2 busy
cores, one thread each, the compiled path was 1.1-1.4x as fast as eager for
ResNet-18/50, MobileNet-v2 and EfficientNet-B0, and onnxruntime faster still
for the last two (the runtime table in the speed guide). So the choice is
measured, not assumed.
"""

from __future__ import annotations

import copy
import statistics
import tempfile
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from cnnzoo.device.memory_format import layout_name, to_channels_last
from cnnzoo.errors import CnnzooError
from cnnzoo.inference.batching import main_output
from cnnzoo.measure.timing import interleaved_latencies
from cnnzoo.speed.export import _write_onnx
from cnnzoo.speed.fold import find_conv_batchnorm_pairs, fold_pairs

RUNTIMES = ("auto", "eager", "compiled", "onnxruntime")
SELECTION_ROUNDS = 5  # interleaved timed rounds per candidate when choosing; the median decides
ONNXRUNTIME_MISSING = (
    "onnxruntime is not installed; install it with pip install 'cnnzoo[export]' "
    "or choose the eager or compiled runtime"
)


@dataclass
class Runner:
    """One way of running a network: ``forward(images)`` gives the main output, float32."""

    runtime: str  # what runs: "eager", "compiled" or "onnxruntime"
    # a normalised float batch (N, C, H, W), any N -> the main output (the first output of a
    # network with auxiliary heads), float32, on the input's device
    forward: Callable[[Tensor], Tensor]
    description: str  # one line for the user: what was chosen and what was measured
    threads: int | None = None  # intra-op threads it runs on; None: the process's own setting


@dataclass
class EagerChoice:
    """The fastest eager variant of a network and how it was chosen."""

    model: nn.Module  # a copy of the network, folded and in its layout
    channels_last: bool
    folded: bool
    foldable_pairs: int  # convolution + batch norm pairs that folding would merge
    milliseconds: dict[str, float]  # median ms per batch of each variant measured


def make_runner(model: nn.Module, example: Tensor, runtime: str = "auto") -> Runner:
    """A :class:`Runner` for ``model`` set up (and, for ``auto``, chosen) on ``example``.

    ``example`` is a batch of the size and shape the runner will mostly see,
    on the device to run on. ``model`` itself is never changed: every runtime
    works on a copy in eval mode.
    """
    if runtime not in RUNTIMES:
        raise CnnzooError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    if example.dim() != 4:
        raise CnnzooError(f"a runner takes a batch of images (N, C, H, W), not {example.dim()}-D")
    if runtime == "eager":
        return eager_runner(model, example)
    if runtime == "compiled":
        return compiled_runner(model, example)
    if runtime == "onnxruntime":
        return onnxruntime_runner(model, example)
    return _auto_runner(model, example)


def fastest_eager(
    model: nn.Module,
    example: Tensor,
    make_step: Callable[[nn.Module, bool], Callable[[], object]],
    *,
    fold: bool = True,
    channels_last: bool | None = None,
    rounds: int = 3,
) -> EagerChoice:
    """The fastest of ``model`` with batch norms folded or kept, NCHW or NHWC.

    Folding saves a memory pass per convolution, but a convolution with a
    bias can take a slower kernel: oneDNN's depthwise convolutions on the
    1x1 and 2x2 maps of EfficientNet-B0 at 32x32 input run about 10% slower
    folded. NHWC is 1.1-3.5x faster than NCHW for most networks here, but
    ResNet-50 at 32x32 runs 8% slower in it. So each variant allowed (folding
    unless ``fold`` is off, both layouts unless ``channels_last`` names one)
    is timed, interleaved, for ``rounds`` rounds after one warm-up, through
    ``make_step(variant, channels_last)``; each variant is a copy, converted
    to its layout, and ``model`` is left as it was.
    """
    layouts = [False, True] if channels_last is None else [channels_last]
    source = copy.deepcopy(model).eval()
    variants = {"kept": source}
    pairs = find_conv_batchnorm_pairs(source, example[:1]) if fold else []
    if pairs:
        folded = copy.deepcopy(source)
        fold_pairs(folded, pairs)
        variants["folded"] = folded
    candidates = []
    for label, variant in variants.items():
        for layout in layouts:
            module = copy.deepcopy(variant)
            if layout:
                module = to_channels_last(module, example[:2])
            candidates.append((f"{label} {layout_name(layout)}", module, layout))
    milliseconds = {}
    fastest = 0
    if len(candidates) > 1:
        steps = [make_step(module, layout) for _, module, layout in candidates]
        times = interleaved_latencies(steps, 1, max(1, rounds))
        medians = [statistics.median(t) * 1e3 for t in times]
        milliseconds = {label: ms for (label, _, _), ms in zip(candidates, medians)}
        fastest = min(range(len(candidates)), key=medians.__getitem__)
    label, module, layout = candidates[fastest]
    return EagerChoice(module, layout, label.startswith("folded"), len(pairs), milliseconds)


def _main_forward(network: Callable, channels_last: bool) -> Callable[[Tensor], Tensor]:
    """``network`` on images in its layout, giving the main output in float32, no autograd.

    ``no_grad`` rather than ``inference_mode``: freezing a compiled graph
    applies under it, and its outputs are ordinary tensors the caller may
    change in place.
    """

    def forward(images: Tensor) -> Tensor:
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            return main_output(network(images)).float()

    return forward


def _in_threads(forward: Callable[[Tensor], Tensor], threads: int) -> Callable[[Tensor], Tensor]:
    """``forward`` on ``threads`` intra-op threads, the process's setting restored after."""

    def forward_in_threads(images: Tensor) -> Tensor:
        previous = torch.get_num_threads()
        if previous == threads:
            return forward(images)
        torch.set_num_threads(threads)
        try:
            return forward(images)
        finally:
            torch.set_num_threads(previous)

    return forward_in_threads


def fastest_thread_count(
    forward: Callable[[Tensor], Tensor], example: Tensor
) -> tuple[int, dict[int, float]]:
    """All of PyTorch's threads or one, whichever runs ``forward`` faster on ``example``.

    Returns the count and the median ms per batch of each (nothing measured
    where there is one thread, or on a GPU, where the count does not apply).
    """
    threads = torch.get_num_threads()
    if threads == 1 or example.device.type != "cpu":
        return threads, {}
    counts = [threads, 1]
    steps = [lambda count=count: _in_threads(forward, count)(example) for count in counts]
    times = interleaved_latencies(steps, 1, SELECTION_ROUNDS)
    milliseconds = {count: statistics.median(t) * 1e3 for count, t in zip(counts, times)}
    return min(counts, key=milliseconds.__getitem__), milliseconds


def eager_runner(model: nn.Module, example: Tensor) -> Runner:
    """PyTorch eager on the fastest thread count, then of folded/kept batch norms and layouts.

    The thread count is measured first, on the network as given, because on a
    busy machine it moves the time most (see the module docstring).
    """
    on_device = copy.deepcopy(model).eval().to(example.device)
    threads, by_threads = fastest_thread_count(_main_forward(on_device, False), example)

    def make_step(variant: nn.Module, channels_last: bool) -> Callable[[], object]:
        forward = _in_threads(_main_forward(variant, channels_last), threads)
        return lambda: forward(example)

    choice = fastest_eager(on_device, example, make_step, rounds=SELECTION_ROUNDS)
    measured = [f"{_threads(count)} {ms:.1f}" for count, ms in by_threads.items()]
    measured += [f"{label} {ms:.1f}" for label, ms in choice.milliseconds.items()]
    batch_norms = "batch norms folded" if choice.folded else "batch norms kept"
    description = f"eager, {batch_norms}, {layout_name(choice.channels_last)}, {_threads(threads)}"
    if measured:
        description += f" (ms per batch of {len(example)}: {', '.join(measured)})"
    forward = _main_forward(choice.model, choice.channels_last)
    return Runner("eager", _in_threads(forward, threads), description, threads)


def _threads(count: int) -> str:
    return "1 thread" if count == 1 else f"{count} threads"


# Compiled networks, kept for the life of the process: per model, per (shape, device, dtype).
_COMPILED: weakref.WeakKeyDictionary[nn.Module, dict[tuple, tuple[Callable, float]]] = (
    weakref.WeakKeyDictionary()
)


def compiled_runner(model: nn.Module, example: Tensor, threads: int | None = None) -> Runner:
    """``torch.compile`` with inductor freezing, compiled once per model, input and threads.

    ``threads`` (default: PyTorch's setting) is compiled into inductor's
    kernels. Freezing takes the weights as they are now: a model whose
    weights change afterwards needs a new process (or another model object)
    to recompile.
    """
    threads = threads or torch.get_num_threads()
    key = (tuple(example.shape), str(example.device), example.dtype, threads)
    per_shape = _COMPILED.setdefault(model, {})
    cached = key in per_shape
    if not cached:
        per_shape[key] = _compile(model, example, threads)
    compiled, seconds = per_shape[key]
    batch = len(example)
    when = "compiled earlier in this process" if cached else "compiled now"
    description = (
        f"compiled (inductor, frozen weights, batch {batch}, {_threads(threads)}): "
        f"{when} in {seconds:.1f} s"
    )
    return Runner("compiled", _fixed_batch(compiled, batch), description, threads)


def _compile(
    model: nn.Module, example: Tensor, threads: int
) -> tuple[Callable[[Tensor], Tensor], float]:
    """The compiled forward of a copy of ``model`` and the seconds compiling took."""
    copied = copy.deepcopy(model).eval().to(example.device)
    channels_last = example.device.type == "cpu"  # oneDNN's CPU kernels run NHWC natively
    if channels_last:
        copied = to_channels_last(copied, example[:2])
    compiled = torch.compile(copied)
    forward = _in_threads(_main_forward(compiled, channels_last), threads)
    start = time.perf_counter()
    try:
        # Inductor reads these when it compiles, at the first call. Passed as torch.compile's
        # options, freezing did not take: the convolutions stayed unpacked and MobileNet-v2
        # at batch 8 ran 78.6 ms a batch, against 66.5 ms with the weights pre-packed.
        with torch._inductor.config.patch({"freezing": True, "cpp.threads": threads}):
            forward(example)
    except Exception as error:  # inductor raises many types; each means "cannot compile this"
        raise CnnzooError(
            f"torch.compile cannot compile {type(model).__name__}: "
            f"{str(error).strip().splitlines()[0]}; choose the eager runtime"
        ) from error
    return forward, time.perf_counter() - start


def _fixed_batch(forward: Callable[[Tensor], Tensor], batch: int) -> Callable[[Tensor], Tensor]:
    """``forward`` for any batch size, calling it only with batches of ``batch`` images.

    A compiled graph is specialised to its batch size; a smaller batch (the
    last of a data set) is padded with copies of its first image and a
    larger one is split, instead of compiling again.
    """

    def any_batch(images: Tensor) -> Tensor:
        outputs = []
        for start in range(0, len(images), batch):
            part = images[start : start + batch]
            missing = batch - len(part)
            if missing:
                part = torch.cat([part, part[:1].expand(missing, *part.shape[1:])])
            outputs.append(forward(part)[: batch - missing])
        return torch.cat(outputs) if len(outputs) > 1 else outputs[0]

    return any_batch


def onnxruntime_runner(model: nn.Module, example: Tensor, threads: int | None = None) -> Runner:
    """cnnzoo's ONNX export of ``model`` run by onnxruntime on ``threads`` (PyTorch's count).

    Runs on CPU, or with onnxruntime's CUDA provider when ``example`` is on a
    GPU and the installed onnxruntime has it. Images must have the example's
    channels, height and width: the exported graph fixes them.
    """
    try:
        import onnxruntime
    except ImportError as error:
        raise CnnzooError(ONNXRUNTIME_MISSING) from error
    options = onnxruntime.SessionOptions()
    # The same cores as PyTorch: onnxruntime would otherwise start one thread per physical core.
    options.intra_op_num_threads = threads or torch.get_num_threads()
    # Spinning threads keep their cores busy after each batch, taking them from other work on a
    # shared machine (and from whatever is timed next); without it onnxruntime measured no
    # slower here: ResNet-50 at batch 8, 2 loaded cores, 1.38 s a batch against 1.57 s.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    providers = ["CPUExecutionProvider"]
    gpu = example.device.type == "cuda"
    if gpu and "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.onnx"
        traced = example[:1].detach().float().cpu().expand(2, *example.shape[1:]).contiguous()
        _write_onnx(copy.deepcopy(model).eval().cpu().float(), traced, path, {})
        try:
            session = onnxruntime.InferenceSession(str(path), options, providers=providers)
        except Exception as error:  # onnxruntime's own error types: a graph it cannot run
            raise CnnzooError(
                f"onnxruntime cannot run {type(model).__name__}'s ONNX graph: "
                f"{str(error).strip().splitlines()[0]}; choose the eager runtime"
            ) from error
    seconds = time.perf_counter() - start
    input_name = session.get_inputs()[0].name
    image_shape = tuple(example.shape[1:])

    def forward(images: Tensor) -> Tensor:
        if tuple(images.shape[1:]) != image_shape:
            raise CnnzooError(
                f"the ONNX graph takes images of {image_shape}, not {tuple(images.shape[1:])}; "
                "resize them or choose the eager runtime"
            )
        array = images.detach().float().cpu().contiguous().numpy()
        output = session.run(None, {input_name: array})[0]
        return torch.from_numpy(output).to(images.device)

    where = session.get_providers()[0].removesuffix("ExecutionProvider")
    description = f"onnxruntime ({where}, {_threads(options.intra_op_num_threads)}): "
    description += f"exported and loaded in {seconds:.1f} s"
    return Runner("onnxruntime", forward, description, options.intra_op_num_threads)


def _auto_runner(model: nn.Module, example: Tensor) -> Runner:
    """The fastest runtime available, measured on ``example``; the description says so.

    onnxruntime is skipped where it is not installed, and on a GPU, where
    copying every batch through host memory would decide the race.
    """
    eager = eager_runner(model, example)
    candidates, skipped = [eager], []
    try:
        candidates.append(compiled_runner(model, example, eager.threads))
    except CnnzooError as error:
        skipped.append(str(error))
    if example.device.type != "cpu":
        skipped.append("onnxruntime skipped on a GPU")
    else:
        try:
            candidates.append(onnxruntime_runner(model, example, eager.threads))
        except CnnzooError as error:
            skipped.append(str(error))
    steps = [lambda runner=runner: runner.forward(example) for runner in candidates]
    times = interleaved_latencies(steps, 1, SELECTION_ROUNDS)
    medians = [statistics.median(t) * 1e3 for t in times]
    best = min(range(len(candidates)), key=medians.__getitem__)
    measured = ", ".join(f"{r.runtime} {ms:.1f}" for r, ms in zip(candidates, medians))
    details = "; ".join(r.description for r in candidates) + "".join(f"; {s}" for s in skipped)
    chosen = candidates[best]
    description = (
        f"{chosen.runtime}: fastest of {measured} ms per batch of {len(example)} "
        f"(median of {SELECTION_ROUNDS} interleaved rounds); {details}"
    )
    return Runner(chosen.runtime, chosen.forward, description, chosen.threads)
