"""Every verb that writes checks its output first: one clear line, nothing lost, no work done."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image

from cnnzoo.cli import main

PROC = Path("/proc/cnnzoo-test")  # a directory no one can create files in, root included


def _fails_with(argv: list[str], message: str, capsys: pytest.CaptureFixture) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert message in err


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "digit.png"
    Image.new("L", (32, 32), 128).save(path)
    return path


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc")
@pytest.mark.parametrize(
    "argv",
    [
        ["export", "lenet5", "--out", str(PROC / "x.onnx")],
        ["compare", "lenet5", "--out", str(PROC)],
        ["experiment", "run", "small-kernels", "--quick", "--out", str(PROC)],
        ["train", "lenet5", "--out", str(PROC / "run")],
    ],
    ids=["export", "compare", "experiment", "train"],
)
def test_an_unwritable_output_is_refused_before_any_work(
    argv: list[str], capsys: pytest.CaptureFixture
) -> None:
    _fails_with(argv, "choose another --out", capsys)


def test_explain_into_an_unwritable_folder_is_refused(
    image: Path, capsys: pytest.CaptureFixture
) -> None:
    _fails_with(["explain", "lenet5", str(image), "--out", str(PROC)], "cannot write", capsys)


def _earlier(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("an earlier result")
    return path


def test_export_keeps_an_existing_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    target = _earlier(tmp_path / "lenet5.onnx")
    _fails_with(["export", "lenet5", "--out", str(target)], "pass --force", capsys)
    assert target.read_text() == "an earlier result"


def test_compare_keeps_an_existing_table(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    target = _earlier(tmp_path / "comparison.csv")
    _fails_with(["compare", "lenet5", "--out", str(tmp_path)], "comparison.csv already", capsys)
    assert target.read_text() == "an earlier result"


def test_experiment_keeps_an_existing_report(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    target = _earlier(tmp_path / "report.md")
    argv = ["experiment", "run", "small-kernels", "--quick", "--out", str(tmp_path)]
    _fails_with(argv, "report.md already exists", capsys)
    assert target.read_text() == "an earlier result"


def test_explain_keeps_an_existing_picture(
    tmp_path: Path, image: Path, capsys: pytest.CaptureFixture
) -> None:
    target = _earlier(tmp_path / "out" / "digit_features_layer1.png")
    argv = ["explain", "lenet5", str(image), "--method", "features", "--out", str(target.parent)]
    _fails_with([*argv, "--layer", "layer1"], "pass --force", capsys)
    assert target.read_text() == "an earlier result"


def test_predict_keeps_existing_masks(
    tmp_path: Path, image: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cnnzoo.inference.predict_files as inference
    from cnnzoo.inference.predictor import Predictor

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("predicted although the output was refused")

    loaded = SimpleNamespace(task="segmentation")
    monkeypatch.setattr(Predictor, "from_checkpoint", lambda *a: loaded)
    monkeypatch.setattr(inference, "predict_files", never)
    target = _earlier(tmp_path / "out" / "digit_overlay.png")
    argv = ["predict", "run", str(image), "--out", str(target.parent), "--device", "cpu"]
    _fails_with(argv, "digit_overlay.png already exists", capsys)
    assert target.read_text() == "an earlier result"


@pytest.mark.filterwarnings("ignore:`torch.jit.save` is deprecated:FutureWarning")
def test_force_replaces_an_earlier_export(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    target = _earlier(tmp_path / "lenet5.pt")
    assert main(["export", "lenet5", "--format", "torchscript", "--out", str(target)]) == 2
    argv = ["export", "lenet5", "--format", "torchscript", "--out", str(target), "--force"]
    assert main(argv) == 0
    assert target.read_bytes() != b"an earlier result"
