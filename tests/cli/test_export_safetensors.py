"""``cnnzoo export RUN --format safetensors``: the folder, its config and card, each refusal."""

from __future__ import annotations

import dataclasses
import json
import shlex
import shutil
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cnnzoo.cli import build_parser, main
from cnnzoo.cli.train import build_config
from cnnzoo.data.preprocessing import Preprocessing
from cnnzoo.inference.export import read_shared_config, shared_config
from cnnzoo.inference.model_card import train_command
from cnnzoo.runs.checkpoint import Checkpoint
from cnnzoo.runs.config import config_from_dict

TINY = ["lenet1989", "--data", "digits", "--image-size", "16", "--epochs", "1", "--quiet"]
TINY += ["--threads", "1", "--no-plots", "--lr", "0.02"]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("share") / "run"
    assert main(["train", *TINY, "--out", str(out)]) == 0
    return out


@pytest.fixture
def run_copy(trained_run: Path, tmp_path: Path) -> Path:
    """The trained run in a folder of this test's own, free to change."""
    return Path(shutil.copytree(trained_run, tmp_path / "run"))


def _share(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    code = main(["export", *argv, "--format", "safetensors"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _refused(argv: list[str], message: str, capsys: pytest.CaptureFixture) -> None:
    code, _, err = _share(argv, capsys)
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert message in err, err


def test_a_run_exports_weights_config_and_card_into_its_export_folder(
    run_copy: Path, capsys: pytest.CaptureFixture
) -> None:
    code, out, _ = _share([str(run_copy)], capsys)
    folder = run_copy / "export"
    assert code == 0 and str(folder) in out
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "config.json",
        "model.safetensors",
    ]
    modes = {
        (folder / name).stat().st_mode & 0o777 for name in ("model.safetensors", "config.json")
    }
    assert len(modes) == 1  # the weights are as readable as the rest of the folder
    best = Checkpoint.load(run_copy / "best.pt").weights
    shared = load_file(folder / "model.safetensors")
    assert shared.keys() == best.keys()
    assert all(torch.equal(shared[name], best[name]) for name in best)


def test_the_config_says_how_to_rebuild_and_feed_the_network(
    run_copy: Path, capsys: pytest.CaptureFixture
) -> None:
    assert _share([str(run_copy), "--out", str(run_copy / "shared")], capsys)[0] == 0
    config = read_shared_config(run_copy / "shared" / "config.json")
    checkpoint = Checkpoint.load(run_copy / "best.pt")
    assert config["model"] == "lenet1989" and config["model_options"] == {}
    assert config["task"] == "classification" and config["class_names"] == list("0123456789")
    assert config["in_channels"] == 1 and config["image_size"] == [16, 16]
    assert (
        config["cnnzoo_version"] and config["weights"] == "best.pt" and config["pretrained"] is None
    )
    feed = config["preprocessing"]
    assert feed["mean"] == list(checkpoint.normalization.mean) and feed["crop_ratio"] is None
    assert Preprocessing.from_dict(feed).to_dict() == feed  # config.json round-trips
    assert json.loads(json.dumps(config)) == config


def test_the_card_names_the_metrics_the_paper_and_a_command_that_trains_it_again(
    run_copy: Path, capsys: pytest.CaptureFixture
) -> None:
    assert _share([str(run_copy)], capsys)[0] == 0
    card = (run_copy / "export" / "README.md").read_text()
    metrics = json.loads((run_copy / "metrics.json").read_text())
    assert f"| top1 | {metrics['top1']:.4g} |" in card and "| top5 |" in card
    assert "LeCun et al. 1989" in card and "## Intended use and limits" in card
    assert "cnnzoo.load(" in card and "lr: 0.02" in card
    command = next(line for line in card.splitlines() if line.startswith("cnnzoo train "))
    assert command == train_command(config_from_dict(Checkpoint.load(run_copy / "best.pt").config))


def _parsed(command: str) -> dict:
    words = shlex.split(command)[1:]
    assert "--out" not in words and "--data-dir" not in words  # they stay on this machine
    return build_config(build_parser("train").parse_args(words)).to_dict()


def test_the_command_on_the_card_parses_back_to_the_same_recipe(trained_run: Path) -> None:
    saved = config_from_dict(Checkpoint.load(trained_run / "best.pt").config)
    assert _parsed(train_command(saved)) == {**saved.to_dict(), "out": None}


def test_every_kind_of_field_survives_the_command_line() -> None:
    recipe = config_from_dict(
        {
            "model": "densenet40_k12", "data": "folder:/data/my photos", "image_size": [24, 32],
            "model_options": {"drop_rate": 0.2}, "milestones": [3, 6], "schedule": "step",
            "nesterov": True, "plots": False, "in_channels": 3, "model_ema": 0.999,
            "out": "/somewhere/run", "data_dir": "/somewhere/data",
        }
    )  # fmt: skip
    assert _parsed(train_command(recipe)) == {**recipe.to_dict(), "out": None, "data_dir": None}


def test_the_moving_average_is_shared_when_it_validated_better(
    run_copy: Path, capsys: pytest.CaptureFixture
) -> None:
    best = Checkpoint.load(run_copy / "best.pt")
    averaged = {name: tensor + 1 for name, tensor in best.weights.items()}
    for ema_score, expected, name in (
        (best.best_score + 0.1, averaged, "best-ema.pt"),
        (best.best_score - 0.1, best.weights, "best.pt"),
    ):
        average = dataclasses.replace(best, weights=averaged, best_ema_score=ema_score)
        average.save(run_copy / "best-ema.pt")
        assert _share([str(run_copy), "--force"], capsys)[0] == 0
        shared = load_file(run_copy / "export" / "model.safetensors")
        assert all(torch.equal(shared[key], expected[key]) for key in expected)
        assert json.loads((run_copy / "export" / "config.json").read_text())["weights"] == name
        card = (run_copy / "export" / "README.md").read_text()
        assert ("theirs are the `ema_` rows" in card) == (name == "best-ema.pt")


def test_a_checkpoint_file_exports_beside_itself(
    run_copy: Path, capsys: pytest.CaptureFixture
) -> None:
    assert _share([str(run_copy / "last.pt")], capsys)[0] == 0
    config = json.loads((run_copy / "last-export" / "config.json").read_text())
    assert config["weights"] == "last.pt"
    assert "the last epoch" in (run_copy / "last-export" / "README.md").read_text()


def test_a_model_name_is_refused_since_it_has_no_trained_weights(
    capsys: pytest.CaptureFixture,
) -> None:
    _refused(["resnet18"], "no trained weights to share", capsys)
    _refused(["no-such-run"], "unknown model 'no-such-run'", capsys)


def test_an_existing_export_is_kept_without_force(
    run_copy: Path, capsys: pytest.CaptureFixture
) -> None:
    card = run_copy / "export" / "README.md"
    card.parent.mkdir()
    card.write_text("an earlier card")
    _refused([str(run_copy)], "pass --force", capsys)
    assert card.read_text() == "an earlier card"
    assert _share([str(run_copy), "--force"], capsys)[0] == 0
    assert card.read_text() != "an earlier card"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc")
def test_an_unwritable_folder_is_refused_before_any_work(
    run_copy: Path, capsys: pytest.CaptureFixture
) -> None:
    _refused([str(run_copy), "--out", "/proc/cnnzoo-test/export"], "choose another --out", capsys)


def test_input_and_class_count_belong_to_the_other_formats(
    run_copy: Path, capsys: pytest.CaptureFixture
) -> None:
    _refused([str(run_copy), "--input", "1,32,32"], "apply to onnx and torchscript", capsys)
    assert not (run_copy / "export").exists()


def test_a_run_from_pretrained_weights_records_their_preprocessing_and_loads_without_them(
    trained_run: Path,
) -> None:
    checkpoint = Checkpoint.load(trained_run / "best.pt")
    recipe = {**checkpoint.config, "model": "resnet18"}
    recipe["model_options"] = {"pretrained": "torchvision"}
    feed = dataclasses.replace(checkpoint.preprocessing, channels=3)
    pretrained = dataclasses.replace(
        checkpoint, model_name="resnet18", preprocessing=feed, config=recipe
    )
    config = shared_config(pretrained, Path("best.pt"))
    assert config["model_options"] == {}  # rebuilt from the trained weights, nothing fetched
    assert config["pretrained"]["source"] == "torchvision"
    assert config["pretrained"]["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert config["pretrained"]["crop_size"] == 224
