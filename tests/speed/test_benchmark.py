"""The benchmark command runs and reports sensible numbers (its timings are not asserted)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

import cnnzoo.speed.benchmark as benchmark_module
import cnnzoo.speed.runners as runners
from cnnzoo.cli import main
from cnnzoo.errors import CnnzooError
from cnnzoo.speed.benchmark import (
    BenchmarkSettings,
    benchmark_models,
    benchmark_runtimes,
    measure_matmul_peak,
    training_loss,
)
from cnnzoo.train import TrainConfig

QUICK = ["--iters", "1", "--warmup", "0", "--batch-size", "2"]


@pytest.fixture(autouse=True)
def _keep_thread_count():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_table_output(capsys) -> None:  # noqa: ANN001
    assert main(["benchmark", "lenet*", *QUICK]) == 0
    out = capsys.readouterr().out
    assert "matmul peak=" in out
    assert "lenet1989" in out and "lenet5" in out  # the wildcard expanded
    assert "MFU" in out


def test_training_against_torchvision_as_json(capsys) -> None:  # noqa: ANN001
    command = ["benchmark", "resnet18", "--mode", "train", "--input", "3,32,32", "--threads", "1"]
    assert main([*command, "--vs-torchvision", "--format", "json", *QUICK]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert result["mode"] == "train" and result["threads"] == 1
    assert result["speedup_vs_torchvision"] > 0
    assert result["torchvision_images_per_second"] > 0
    assert 0 < result["mfu"] < 1.5  # a step cannot run far above the matrix-product peak


def test_flops_are_those_of_the_network() -> None:
    """Inference FLOPs match torchvision's resnet18 counted independently; a training
    step (forward + backward) costs about three forward passes."""
    settings = BenchmarkSettings(batch_size=2, input_size=(3, 64, 64), iters=1, warmup=0)
    (infer,) = benchmark_models(["resnet18"], settings)
    (train,) = benchmark_models(["resnet18"], replace(settings, mode="train"))
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        torchvision.models.resnet18().eval()(torch.randn(1, 3, 64, 64))
    assert infer.flops_per_image == pytest.approx(counter.get_total_flops(), rel=1e-6)
    assert 2.5 < train.flops_per_image / infer.flops_per_image < 3.1


def test_depthwise_convolutions_backward_costs_twice_their_forward() -> None:
    settings = BenchmarkSettings(batch_size=2, input_size=(3, 64, 64), iters=1, warmup=0)
    (infer,) = benchmark_models(["mobilenet_v2"], replace(settings, fold_batchnorm=False))
    (train,) = benchmark_models(["mobilenet_v2"], replace(settings, mode="train"))
    # The first convolution's input needs no gradient: a little under 3x.
    assert 2.8 < train.flops_per_image / infer.flops_per_image <= 3.0


def test_auxiliary_heads_add_their_loss_with_weight_0_3() -> None:
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    targets = torch.tensor([0, 0])
    main_loss = training_loss(logits, targets)
    assert training_loss((logits, logits), targets) == pytest.approx(1.3 * main_loss.item())


def test_training_mode_times_the_engine_s_own_step(monkeypatch: pytest.MonkeyPatch) -> None:
    steps: list[str] = []
    engine_step = benchmark_module.train_step

    def recorded(model, images, targets, recipe, **options):  # noqa: ANN001, ANN003, ANN202
        steps.append(recipe.precision)
        assert recipe.aux_weight == TrainConfig.aux_weight
        return engine_step(model, images, targets, recipe, **options)

    monkeypatch.setattr(benchmark_module, "train_step", recorded)
    settings = BenchmarkSettings(mode="train", batch_size=2, input_size=(1, 32, 32), warmup=1,
                                 iters=2, precision="bf16")  # fmt: skip
    benchmark_models(["lenet5"], settings)
    assert steps == ["bf16"] * 3


def test_matmul_peak_is_positive() -> None:
    assert measure_matmul_peak("bf16", size=64) > 0


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["lenet5", "--vs-torchvision"], "torchvision has no copy of lenet5"),
        (["resnet18", "--vs-torchvision", "--input", "1,64,64"], "3-channel"),
        (["resnet18", "--input", "3,16,16"], "at least 32x32"),
        (["resnet18", "--mode", "train", "--batch-size", "1"], "batch of at least 2"),
        (["no_such_net"], "unknown model"),
        (["no_such_*"], "no model matches"),
        (["lenet5", "--vs-onnxruntime", "--mode", "train"], "times fp32 inference"),
        (["lenet5", "--vs-onnxruntime", "--precision", "bf16"], "times fp32 inference"),
        (["lenet5", "--vs-onnxruntime", "--vs-torchvision"], "a comparison of its own"),
    ],
)
def test_mistakes_are_one_line_errors(arguments: list[str], message: str, capsys) -> None:  # noqa: ANN001
    assert main(["benchmark", *arguments, "--iters", "1", "--warmup", "0"]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1


@pytest.mark.parametrize(("flag", "nhwc"), [([], True), (["--no-channels-last"], False)])
def test_epoch_split(flag: list[str], nhwc: bool, capsys) -> None:  # noqa: ANN001
    command = ["benchmark", "lenet5", "--epoch", "--data", "digits", "--format", "json", *flag]
    assert main(command) == 0
    (timing,) = json.loads(capsys.readouterr().out)
    assert timing["channels_last"] == nhwc
    assert timing["images"] > 1000  # digits: 1,797 images less the held-out splits
    assert 0 < timing["data_seconds"] < timing["epoch_seconds"]
    assert timing["compute_seconds"] == pytest.approx(
        timing["epoch_seconds"] - timing["data_seconds"]
    )


def test_epoch_takes_model_options(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    for folder in ("images", "masks"):
        (tmp_path / folder).mkdir()
    for index in range(12):  # colour images at their own 16x20, masks of their red pixels
        pixels = np.random.default_rng(index).integers(0, 256, (16, 20, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / "images" / f"{index}.png")
        Image.fromarray(np.where(pixels[..., 0] > 128, 255, 0).astype(np.uint8)).save(
            tmp_path / "masks" / f"{index}.png"
        )
    data = f"folder:{tmp_path / 'images'},{tmp_path / 'masks'}"
    command = ["benchmark", "unet", "--epoch", "--data", data, "--batch-size", "4"]
    assert main([*command, "--model-option", "width=4", "--format", "json"]) == 0
    (timing,) = json.loads(capsys.readouterr().out)
    assert timing["model_options"] == {"width": 4}
    assert main([*command, "--model-option", "widht=4"]) == 2
    assert "does not take option(s) widht" in capsys.readouterr().err


def test_fast_paths_are_timed_against_plain_fp32(capsys) -> None:  # noqa: ANN001
    command = ["benchmark", "resnet18", "--fast-paths", "--input", "3,32,32", "--format", "json"]
    assert main([*command, *QUICK]) == 0
    paths = {row["fast_path"]: row for row in json.loads(capsys.readouterr().out)}
    assert set(paths) == {
        "baseline",
        "channels_last",
        "bf16",
        "channels_last + bf16",
        "fold",
        "fold + channels_last",
        "fold + channels_last + bf16",
    }
    assert paths["baseline"]["speedup"] == 1.0
    assert all(row["images_per_second"] > 0 for row in paths.values())


@pytest.mark.parametrize("fastest", [0, 1, 2, 3])
def test_inference_keeps_the_fastest_of_folding_and_layout(
    fastest: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cnnzoo.speed.benchmark as benchmark

    def latencies(steps: list, warmup: int, iters: int) -> list[list[float]]:
        for step in steps:
            step()
        return [[1.0 if i == fastest else 2.0] * iters for i in range(len(steps))]

    monkeypatch.setattr(runners, "interleaved_latencies", latencies)
    model = torchvision.models.resnet18(num_classes=10).eval()
    notes: list[str] = []
    settings = BenchmarkSettings(batch_size=1, input_size=(3, 32, 32))
    images, targets = torch.randn(1, 3, 32, 32), torch.tensor([0])
    kept, nhwc = benchmark._fastest_inference(model, images, targets, settings, notes)
    batch_norms = sum(isinstance(m, torch.nn.BatchNorm2d) for m in kept.modules())
    folded, expect_nhwc = fastest >= 2, fastest % 2 == 1  # (plain, folded) x (NCHW, NHWC)
    assert (batch_norms == 0) == folded and nhwc == expect_nhwc
    assert ("folded" if folded else "kept") in notes[0]
    assert ("NHWC" if nhwc else "NCHW") in notes[1]
    conv = next(m for m in kept.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last) == nhwc


def test_a_layout_asked_for_is_not_measured(monkeypatch: pytest.MonkeyPatch) -> None:
    import cnnzoo.speed.benchmark as benchmark

    def latencies(steps: list, warmup: int, iters: int) -> list[list[float]]:
        assert len(steps) == 2  # folded or not, in the one layout asked for
        return [[2.0] * iters, [1.0] * iters]

    monkeypatch.setattr(runners, "interleaved_latencies", latencies)
    model = torchvision.models.resnet18(num_classes=10).eval()
    notes: list[str] = []
    settings = BenchmarkSettings(batch_size=1, input_size=(3, 32, 32), channels_last=False)
    images, targets = torch.randn(1, 3, 32, 32), torch.tensor([0])
    _, nhwc = benchmark._fastest_inference(model, images, targets, settings, notes)
    assert not nhwc and notes == ["batch norm folded into convolutions"]


@pytest.mark.parametrize(
    ("flag", "ours", "theirs"),
    [([], True, False), (["--channels-last"], True, True), (["--no-channels-last"], False, False)],
)
def test_training_layouts(flag: list[str], ours: bool, theirs: bool, capsys) -> None:  # noqa: ANN001
    """By default each network trains in its own layout: ours NHWC on CPU, torchvision NCHW."""
    command = ["benchmark", "resnet18", "--mode", "train", "--input", "3,32,32",
               "--vs-torchvision", "--format", "json", *flag, *QUICK]  # fmt: skip
    assert main(command) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert result["channels_last"] == ours and result["torchvision_channels_last"] == theirs


def test_speed_report_joins_benchmark_files_into_one_table(tmp_path, capsys) -> None:  # noqa: ANN001
    from cnnzoo.speed.report import main as report

    assert main(["benchmark", "resnet18", "--input", "3,32,32", "--vs-torchvision",
                 "--format", "json", *QUICK]) == 0  # fmt: skip
    (tmp_path / "infer.json").write_text(capsys.readouterr().out)
    assert main(["benchmark", "resnet18", "--input", "3,32,32", "--mode", "train",
                 "--vs-torchvision", "--format", "json", *QUICK]) == 0  # fmt: skip
    (tmp_path / "train.json").write_text(capsys.readouterr().out)
    assert report([str(tmp_path / "infer.json"), str(tmp_path / "train.json")]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0] == "| network | train 32x32, batch 2 | infer 32x32, batch 2 |"
    assert table[2].startswith("| resnet18 | ") and table[2].count("**") == 4
    (tmp_path / "bad.json").write_text("not json")
    assert report([str(tmp_path / "bad.json")]) == 2
    assert "not a benchmark JSON file" in capsys.readouterr().err


def test_results_record_the_machines_load(capsys) -> None:  # noqa: ANN001
    assert main(["benchmark", "lenet5", "--format", "json", *QUICK]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert set(result["load"]) == {"start", "end", "cores", "other_cores", "busy"}
    assert result["load"]["cores"] >= 1 and isinstance(result["load"]["busy"], bool)
    assert main(["benchmark", "lenet5", *QUICK]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("machine: ")


def test_the_speed_report_labels_a_table_measured_under_load(tmp_path) -> None:  # noqa: ANN001
    from cnnzoo.speed.report import speed_table

    result = {
        "model": "resnet18", "mode": "infer", "input_size": [3, 32, 32], "batch_size": 2,
        "channels_last": False, "torchvision_channels_last": False,
        "images_per_second": 10.0, "torchvision_images_per_second": 9.0,
        "speedup_vs_torchvision": 1.1, "speedup_p10": 1.0, "speedup_p90": 1.2,
    }  # fmt: skip
    loads = {"idle": (0.2, 0.3), "busy": (0.2, 3.0)}
    for name, (start, end) in loads.items():
        load = {"start": start, "end": end, "cores": 2, "busy": name == "busy"}
        (tmp_path / f"{name}.json").write_text(json.dumps([{**result, "load": load}]))
    idle = speed_table([tmp_path / "idle.json"]).splitlines()[-1]
    assert idle == "Machine load: idle (load 0.20 -> 0.30 on 2 cores)"
    both = speed_table([tmp_path / "idle.json", tmp_path / "busy.json"]).splitlines()[-1]
    assert both == "Machine load: measured under load (load 0.20 -> 3.00 on 2 cores)"
    (tmp_path / "old.json").write_text(json.dumps([result]))
    assert "not recorded" in speed_table([tmp_path / "old.json"])


def _quick_compile(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch.compile replaced by the eager runner, which is what these tests can afford."""

    def compiled(model: torch.nn.Module, example: torch.Tensor, threads: int) -> runners.Runner:
        return replace(runners.eager_runner(model, example), runtime="compiled")

    monkeypatch.setattr(benchmark_module, "compiled_runner", compiled)


def test_ours_against_onnxruntime_as_json(monkeypatch, capsys, tmp_path) -> None:  # noqa: ANN001
    from cnnzoo.speed.report import main as report

    _quick_compile(monkeypatch)
    command = ["benchmark", "lenet5", "--vs-onnxruntime", "--threads", "1", "--format", "json"]
    assert main([*command, *QUICK]) == 0
    out = capsys.readouterr().out
    (result,) = json.loads(out)
    assert result["threads"] == 1 and result["batch_size"] == 2
    for runtime in ("eager", "compiled", "onnxruntime"):
        assert result[f"{runtime}_images_per_second"] > 0
    assert result["best_ours"] in ("eager", "compiled")
    assert result["ratio_p10"] <= result["ours_vs_onnxruntime"] <= result["ratio_p90"]
    assert result["compile_seconds"] >= 0 and result["export_seconds"] > 0
    assert result["eager_path"].startswith("eager, batch norms")
    assert result["load"]["cores"] >= 1
    (tmp_path / "runtimes.json").write_text(out)
    assert report([str(tmp_path / "runtimes.json")]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("| network | batch | eager img/s | compiled img/s (compile s) |")
    assert table[2].startswith("| lenet5 | 2 | ") and table[2].count("**") == 2
    assert table[-1].startswith("Machine load: ")


def test_ours_against_onnxruntime_as_a_table(monkeypatch, capsys) -> None:  # noqa: ANN001
    _quick_compile(monkeypatch)
    assert main(["benchmark", "lenet5", "--vs-onnxruntime", *QUICK]) == 0
    out = capsys.readouterr().out
    assert "ours/onnxruntime" in out and "compile s" in out
    assert "lenet5 eager: eager, batch norms" in out


def test_a_network_that_does_not_compile_is_still_compared(monkeypatch) -> None:  # noqa: ANN001
    def cannot(model: torch.nn.Module, example: torch.Tensor, threads: int) -> runners.Runner:
        raise CnnzooError("torch.compile cannot compile LeNet5")

    monkeypatch.setattr(benchmark_module, "compiled_runner", cannot)
    settings = BenchmarkSettings(batch_size=2, iters=1, warmup=0)
    (result,) = benchmark_runtimes(["lenet5"], settings)
    assert result.compiled_images_per_second is None and result.best_ours == "eager"
    assert result.notes == ["torch.compile cannot compile LeNet5"]
