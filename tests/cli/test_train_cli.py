"""``cnnzoo train | eval | predict`` end to end, and each bad input as one clear line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from cnnzoo.cli import main

TINY = ["lenet1989", "--data", "digits", "--image-size", "16", "--epochs", "1", "--quiet"]
TINY += ["--threads", "1", "--no-plots"]


def run(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", *TINY, "--out", str(out)]) == 0
    return out


def test_train_prints_the_metrics_json_last(trained_run: Path) -> None:
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert {"top1", "top5", "loss", "epochs", "train_seconds", "images_per_second"} <= set(metrics)
    saved = yaml.safe_load((trained_run / "config.yaml").read_text())
    assert saved["model"] == "lenet1989" and saved["image_size"] == 16


def test_eval_reports_the_same_test_accuracy(
    trained_run: Path, capsys: pytest.CaptureFixture
) -> None:
    code, out, _ = run(["eval", str(trained_run)], capsys)
    assert code == 0
    result = json.loads(out.strip().splitlines()[-1])
    assert result["top1"] == json.loads((trained_run / "metrics.json").read_text())["top1"]
    code, out, _ = run(["eval", str(trained_run / "last.pt"), "--split", "val"], capsys)
    assert code == 0 and json.loads(out.strip().splitlines()[-1])["split"] == "val"


def test_predict_names_classes_with_probabilities(
    trained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from sklearn.datasets import load_digits

    digit = load_digits().images[0] * (255 / 16)  # a zero
    Image.fromarray(digit.astype(np.uint8)).save(tmp_path / "zero.png")
    code, out, _ = run(["predict", str(trained_run), str(tmp_path / "zero.png"), "--topk", "3",
                        "--json"], capsys)  # fmt: skip
    assert code == 0
    predictions = json.loads(out.strip())["predictions"]
    assert len(predictions) == 3 and {p["class"] for p in predictions} <= set("0123456789")
    probabilities = [p["probability"] for p in predictions]
    assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1.0001


def test_predict_shows_progress_over_its_images(
    trained_run: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import cnnzoo.inference.predict_files
    from cnnzoo.progress import progress_bar

    shown: list[tuple[int, str]] = []

    def recording(total: int, description: str, **options: object):
        shown.append((total, description))
        return progress_bar(total, description, **options)

    monkeypatch.setattr(cnnzoo.inference.predict_files, "progress_bar", recording)
    images = [tmp_path / "a.png", tmp_path / "b.png"]
    for path in images:
        Image.new("L", (16, 16), 200).save(path)
    code, out, _ = run(["predict", str(trained_run), *map(str, images), "--quiet"], capsys)
    assert code == 0 and len(out.strip().splitlines()) == 2
    assert shown == [(2, "predicting")]


def test_yaml_recipe_sets_fields_and_flags_override_it(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "model: lenet1989\ndata: digits\nimage_size: 16\nepochs: 1\nlr: 0.1\nchannels_last: true\n"
    )
    out = tmp_path / "run"
    code, stdout, _ = run(["train", "--config", str(recipe), "--lr", "0.2", "--out", str(out),
                           "--quiet", "--threads", "1", "--no-plots", "--no-channels-last"],
                          capsys)  # fmt: skip
    assert code == 0 and json.loads(stdout.strip().splitlines()[-1])["epochs"] == 1
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert (saved["lr"], saved["epochs"], saved["model"]) == (0.2, 1, "lenet1989")
    assert saved["channels_last"] is False
    code, stdout, _ = run(["train", "--resume", "--out", str(out), "--epochs", "2", "--quiet"],
                          capsys)  # fmt: skip
    assert code == 0 and json.loads(stdout.strip().splitlines()[-1])["epochs"] == 2


def _folder(root: Path, classes: dict[str, int], corrupt: bool = False) -> str:
    root.mkdir(parents=True)
    for name, count in classes.items():
        (root / name).mkdir(parents=True)
        for index in range(count):
            Image.new("L", (16, 16), index * 20).save(root / name / f"{index}.png")
    if corrupt:
        (root / "a" / "bad.png").write_bytes(b"garbage")
    return f"folder:{root}"


def _other_model_checkpoint(trained_run: Path, tmp_path: Path) -> str:
    checkpoint = torch.load(trained_run / "best.pt", weights_only=True)
    checkpoint["model_name"] = "lenet5"
    torch.save(checkpoint, tmp_path / "other.pt")
    return str(tmp_path / "other.pt")


BAD_INPUTS = {
    "unknown model": (lambda t, r: ["train", "lenet6", "--data", "digits"], "unknown model"),
    "unknown data": (lambda t, r: ["train", "lenet5", "--data", "digitz"], "unknown data set"),
    "missing data dir": (
        lambda t, r: ["train", "resnet20", "--data", "cifar10", "--data-dir", str(t / "none")],
        "--download",
    ),
    "empty folder": (
        lambda t, r: ["train", "lenet5", "--data", _folder(t / "f", {})],
        "at least two classes",
    ),
    "single class": (
        lambda t, r: ["train", "lenet5", "--data", _folder(t / "f", {"a": 3})],
        "found only 'a'",
    ),
    "corrupt image": (
        lambda t, r: ["train", "lenet5", "--data", _folder(t / "f", {"a": 2, "b": 2}, True)],
        "bad.png",
    ),
    "unwritable out": (
        lambda t, r: [*["train", *TINY], "--out", str(Path(__file__)) + "/run"],
        "cannot write to the run directory",
    ),
    "existing run": (lambda t, r: ["train", *TINY, "--out", str(r)], "already holds a run"),
    "resume other model": (
        lambda t, r: ["train", "lenet5", "--resume", "--out", str(r)],
        "is of 'lenet1989', not 'lenet5'",
    ),
    "checkpoint of another model": (
        lambda t, r: ["eval", _other_model_checkpoint(r, t)],
        "do not fit 'lenet5'",
    ),
    "not a checkpoint": (lambda t, r: ["eval", str(Path(__file__))], "not a readable checkpoint"),
    "unknown yaml key": (
        lambda t, r: ["train", "--config", str(_write(t / "c.yaml", "epoch: 3\n"))],
        "unknown configuration key",
    ),
    "missing image": (lambda t, r: ["predict", str(r), str(t / "none.png")], "does not exist"),
}


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_clear_line_and_a_nonzero_exit(
    case: str,
    trained_run: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    build, message = BAD_INPUTS[case]
    monkeypatch.chdir(tmp_path)  # where a default run directory (runs/...) would appear
    before = sorted(trained_run.iterdir())
    code, _, err = run(build(tmp_path, trained_run), capsys)
    assert code == 2
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert message in err
    assert not (tmp_path / "runs").exists(), "a failed command left a run directory behind"
    assert sorted(trained_run.iterdir()) == before
