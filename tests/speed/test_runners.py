"""Every inference runtime computes what the network does, for any batch, and auto says why."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import cnnzoo
import cnnzoo.speed.runners as runners
from cnnzoo.errors import CnnzooError
from cnnzoo.speed.export import TOLERANCE
from cnnzoo.speed.runners import RUNTIMES, make_runner


def _calibrated(name: str, in_channels: int = 3) -> nn.Module:
    """A network whose batch norms hold real statistics, so folding changes the weights."""
    torch.manual_seed(0)
    model = cnnzoo.create_model(name, num_classes=10, in_channels=in_channels).train()
    with torch.no_grad():
        model(torch.randn(8, in_channels, 32, 32))
    return model.eval()


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.clone() for key, value in model.state_dict().items()}


@pytest.fixture(scope="module")
def resnet20() -> nn.Module:
    return _calibrated("resnet20")


@pytest.mark.parametrize("runtime", ["eager", "onnxruntime"])
def test_a_runtime_equals_the_network_for_any_batch(runtime: str, resnet20: nn.Module) -> None:
    before = _state(resnet20)
    runner = make_runner(resnet20, torch.randn(4, 3, 32, 32), runtime)
    assert runner.runtime == runtime and runner.description.startswith(runtime)
    for batch in (1, 4, 7):
        images = torch.randn(batch, 3, 32, 32)
        with torch.no_grad():
            expected = resnet20(images)
        actual = runner.forward(images)
        assert actual.dtype == torch.float32 and actual.shape == expected.shape
        torch.testing.assert_close(actual, expected, atol=TOLERANCE, rtol=1e-4)
    actual.mul_(2)  # an ordinary tensor the caller may change in place
    after = _state(resnet20)
    assert all(torch.equal(before[key], after[key]) for key in before)
    assert not next(resnet20.parameters()).is_contiguous(memory_format=torch.channels_last)


def test_eager_folds_on_a_copy_and_names_what_it_measured(resnet20: nn.Module) -> None:
    runner = make_runner(resnet20, torch.randn(2, 3, 32, 32), "eager")
    assert "folded NHWC" in runner.description and "ms per batch of 2" in runner.description
    assert sum(isinstance(m, nn.BatchNorm2d) for m in resnet20.modules()) > 0


def test_auxiliary_heads_give_the_main_output() -> None:
    class WithAuxiliary(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)

        def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return self.conv(images), self.conv(images) * 0

    model = WithAuxiliary().eval()
    images = torch.randn(2, 1, 8, 8)
    runner = make_runner(model, images, "eager")
    torch.testing.assert_close(runner.forward(images), model.conv(images).detach())


@pytest.mark.slow
def test_compiled_equals_the_network_and_compiles_once(resnet20: nn.Module) -> None:
    example = torch.randn(4, 3, 32, 32)
    runner = make_runner(resnet20, example, "compiled")
    assert "compiled now" in runner.description
    for batch in (1, 4, 9):
        images = torch.randn(batch, 3, 32, 32)
        with torch.no_grad():
            expected = resnet20(images)
        torch.testing.assert_close(runner.forward(images), expected, atol=TOLERANCE, rtol=1e-4)
    again = make_runner(resnet20, example, "compiled")
    assert "compiled earlier in this process" in again.description
    with torch.profiler.profile() as profile:
        again.forward(example)
    operators = {event.key for event in profile.key_averages()}
    assert "mkldnn::_convolution_pointwise" in operators  # frozen: weights pre-packed


def test_smaller_and_larger_batches_reach_a_compiled_graph_at_its_own_size() -> None:
    sizes: list[int] = []

    def fixed(images: torch.Tensor) -> torch.Tensor:
        sizes.append(len(images))
        return images.sum(dim=(1, 2, 3))

    forward = runners._fixed_batch(fixed, 4)
    images = torch.randn(9, 1, 2, 2)
    torch.testing.assert_close(forward(images), images.sum(dim=(1, 2, 3)))
    torch.testing.assert_close(forward(images[:3]), images[:3].sum(dim=(1, 2, 3)))
    assert sizes == [4, 4, 4, 4]


def test_auto_picks_the_fastest_and_says_what_it_measured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = _calibrated("lenet5", in_channels=1)
    example = torch.randn(2, 1, 32, 32)

    def fake_compiled(model: nn.Module, example: torch.Tensor, threads: int) -> runners.Runner:
        return runners.Runner("compiled", lambda images: model(images), "compiled (fake)")

    def latencies(steps: list, warmup: int, iters: int) -> list[list[float]]:
        for step in steps:
            step()
        return [[3.0 - index] * iters for index in range(len(steps))]  # the last is fastest

    monkeypatch.setattr(runners, "compiled_runner", fake_compiled)
    monkeypatch.setattr(runners, "interleaved_latencies", latencies)
    runner = make_runner(model, example, "auto")
    assert runner.runtime == "onnxruntime"
    assert runner.description.startswith("onnxruntime: fastest of eager 3000.0, compiled 2000.0")
    with torch.no_grad():
        expected = model(example)
    torch.testing.assert_close(runner.forward(example), expected, atol=TOLERANCE, rtol=1e-4)


def test_auto_skips_onnxruntime_where_it_is_not_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = _calibrated("lenet5", in_channels=1)

    def not_installed(model: nn.Module, example: torch.Tensor, threads: int) -> runners.Runner:
        raise CnnzooError(runners.ONNXRUNTIME_MISSING)

    def no_compiler(model: nn.Module, example: torch.Tensor, threads: int) -> runners.Runner:
        raise CnnzooError("torch.compile cannot compile LeNet5")

    monkeypatch.setattr(runners, "onnxruntime_runner", not_installed)
    monkeypatch.setattr(runners, "compiled_runner", no_compiler)
    runner = make_runner(model, torch.randn(2, 1, 32, 32), "auto")
    assert runner.runtime == "eager"
    assert "onnxruntime is not installed" in runner.description
    assert "cannot compile" in runner.description


def test_onnxruntime_missing_is_one_message(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def without_onnxruntime(name: str, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        if name == "onnxruntime":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_onnxruntime)
    with pytest.raises(CnnzooError, match="onnxruntime is not installed"):
        make_runner(nn.Conv2d(1, 1, 1), torch.randn(1, 1, 4, 4), "onnxruntime")


def test_onnxruntime_names_the_image_size_its_graph_takes(resnet20: nn.Module) -> None:
    runner = make_runner(resnet20, torch.randn(2, 3, 32, 32), "onnxruntime")
    with pytest.raises(CnnzooError, match="takes images of"):
        runner.forward(torch.randn(2, 3, 40, 40))


def test_an_unknown_runtime_is_one_error() -> None:
    with pytest.raises(CnnzooError, match="unknown runtime 'tensorrt'"):
        make_runner(nn.Conv2d(1, 1, 1), torch.randn(1, 1, 4, 4), "tensorrt")
    assert RUNTIMES == ("auto", "eager", "compiled", "onnxruntime")


def test_eager_runs_on_one_thread_where_that_measures_faster(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[int] = []

    class RecordsThreads(nn.Conv2d):
        def forward(self, images: torch.Tensor) -> torch.Tensor:
            seen.append(torch.get_num_threads())
            return super().forward(images)

    def latencies(steps: list, warmup: int, iters: int) -> list[list[float]]:
        for step in steps:
            step()
        return [[len(steps) - index] * iters for index in range(len(steps))]  # the last is fastest

    monkeypatch.setattr(runners, "interleaved_latencies", latencies)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        runner = make_runner(RecordsThreads(1, 1, 3), torch.randn(2, 1, 8, 8), "eager")
        seen.clear()
        runner.forward(torch.randn(3, 1, 8, 8))
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
    assert runner.threads == 1
    assert "1 thread (ms per batch of 2: 2 threads 2000.0, 1 thread 1000.0" in runner.description


def test_a_graph_onnxruntime_cannot_run_is_one_message(monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxruntime

    def refuses(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise RuntimeError("[ONNXRuntimeError] : 9 : NOT_IMPLEMENTED\nstack")

    monkeypatch.setattr(onnxruntime, "InferenceSession", refuses)
    with pytest.raises(CnnzooError, match="onnxruntime cannot run Conv2d's ONNX graph: .*9"):
        make_runner(nn.Conv2d(1, 1, 1), torch.randn(1, 1, 4, 4), "onnxruntime")
