"""``cnnzoo predict`` over folders and ``cnnzoo eval --out``: the same predictions per image."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PIL import Image

from cnnzoo.cli import main
from cnnzoo.data.synthetic_folder import FolderSpec, write_image_folder

TRAIN = ["lenet1989", "--image-size", "16", "--epochs", "1", "--quiet", "--threads", "1"]
TRAIN += ["--no-plots", "--workers", "0", "--batch-size", "8"]
TEST_IMAGES = 24  # half of the folder's 48
FAST = ["--runtime", "eager", "--device", "cpu", "--quiet"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("folder")
    spec = FolderSpec(images=48, classes=3, size=(20, 24), splits=("train", "test"))
    write_image_folder(root, spec)
    return root


# The third streams by choice: --data-mode auto with no memory budget; its checkpoint records it.
MODES = {"memory": ["memory"], "stream": ["stream"], "auto": ["auto", "--memory-budget-mb", "0"]}


@pytest.fixture(scope="module", params=list(MODES))
def run_dir(request: pytest.FixtureRequest, folder: Path) -> Path:
    out = folder.parent / f"run-{request.param}"
    argv = ["train", *TRAIN, "--data", f"folder:{folder}", "--data-mode", *MODES[request.param]]
    assert main([*argv, "--out", str(out)]) == 0
    return out


def _rows(path: Path) -> dict[str, dict[str, str]]:
    return {row["path"]: row for row in csv.DictReader(path.open())}


def test_predict_over_the_test_folder_equals_eval_image_for_image(
    run_dir: Path, folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    predict = ["predict", str(run_dir), str(folder / "test"), "--out", str(tmp_path / "p"), *FAST]
    assert main([*predict, "--batch-size", "5", "--workers", "1"]) == 0
    assert main(["eval", str(run_dir), "--out", str(tmp_path / "e"), *FAST]) == 0
    out = capsys.readouterr().out
    assert json.loads(out.strip().splitlines()[-1])["split"] == "test"
    predicted = _rows(tmp_path / "p" / "predictions.csv")
    evaluated = _rows(tmp_path / "e" / "predictions.csv")
    assert len(predicted) == TEST_IMAGES and predicted.keys() == evaluated.keys()
    for path, row in predicted.items():
        assert row["prediction"] == evaluated[path]["prediction"]
        probability = float(evaluated[path]["probability"])
        assert float(row["probability"]) == pytest.approx(probability, abs=1e-5)
    header = next(csv.reader((tmp_path / "p" / "predictions.csv").open()))
    assert header == ["path", "prediction", "probability", "top2", "top2_probability",
                      "top3", "top3_probability"]  # fmt: skip


def test_eval_writes_its_report_beside_the_run_and_prints_the_table(
    run_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["eval", str(run_dir), *FAST]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    metrics = json.loads(lines[-1])
    assert lines[0].split() == ["class", "precision", "recall", "f1", "support"]
    report = json.loads((run_dir / "eval-test" / "report.json").read_text())
    assert list(report["classes"]) == ["class_000", "class_001", "class_002"]
    assert sum(c["support"] for c in report["classes"].values()) == TEST_IMAGES
    assert (run_dir / "eval-test" / "confusion.png").is_file()
    assert metrics["top1"] == pytest.approx(
        sum(c["recall"] * c["support"] for c in report["classes"].values()) / TEST_IMAGES
    )
    (run_dir / "eval-test" / "report.json").write_text("an earlier report")
    assert main(["eval", str(run_dir), *FAST]) == 0  # its own folder: replaced, no --force
    again = json.loads((run_dir / "eval-test" / "report.json").read_text())
    assert again["classes"] == report["classes"]


def test_eval_refuses_a_report_folder_the_user_named_unless_forced(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "named"
    out.mkdir()
    (out / "report.json").write_text("an earlier report")
    assert main(["eval", str(run_dir), "--out", str(out), *FAST]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"cnnzoo: error: {out / 'report.json'} already exists; "
        "pass --force to replace it, or choose another --out\n"
    )
    assert (out / "report.json").read_text() == "an earlier report"
    assert main(["eval", str(run_dir), "--out", str(out), *FAST, "--force"]) == 0
    assert "classes" in json.loads((out / "report.json").read_text())


def test_a_table_file_is_refused_when_it_exists_and_replaced_with_force(
    run_dir: Path, folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    table = tmp_path / "out.jsonl"
    table.write_text("an earlier result")
    argv = ["predict", str(run_dir), str(folder / "test" / "*" / "*.jpg"), "--out", str(table)]
    assert main([*argv, *FAST]) == 2
    err = capsys.readouterr().err
    assert "already exists; pass --force" in err and len(err.strip().splitlines()) == 1
    assert table.read_text() == "an earlier result"
    assert main([*argv, *FAST, "--force", "--topk", "1"]) == 0
    rows = [json.loads(line) for line in table.read_text().splitlines()]
    assert len(rows) == TEST_IMAGES and set(rows[0]) == {"path", "prediction", "probability"}


def test_other_files_in_a_folder_are_skipped_and_counted(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    for name in ("a.png", "b.png"):
        Image.new("RGB", (24, 20), (200, 10, 10)).save(tmp_path / name)
    for name in ("notes.txt", "labels.csv", "model.pt"):
        (tmp_path / name).write_text("not a picture")
    assert main(["predict", str(run_dir), str(tmp_path), *FAST, "--json"]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.strip().splitlines()) == 2
    assert "skipped 3 file(s) that are not images: labels.csv" in captured.err.replace(
        str(tmp_path) + "/", ""
    )


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (lambda t: t / "file.txt" / "out.csv", "cannot write to the output"),
        (lambda t: t / "file.txt", "is a file, not a directory"),
    ],
)
def test_an_output_that_cannot_be_written_is_one_message_before_any_work(
    run_dir: Path, folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture, target, message
) -> None:
    (tmp_path / "file.txt").write_text("kept")
    argv = ["predict", str(run_dir), str(folder / "test"), "--out", str(target(tmp_path)), *FAST]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "file.txt").read_text() == "kept"


def test_a_file_that_is_not_a_checkpoint_is_one_message(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    fake = tmp_path / "best.pt"
    fake.write_text("not a checkpoint")
    assert main(["predict", str(fake), str(folder / "test"), *FAST]) == 2
    err = capsys.readouterr().err
    assert "not a readable checkpoint" in err and len(err.strip().splitlines()) == 1


def test_onnxruntime_predicts_what_eager_predicts_and_says_so(
    run_dir: Path, folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    pytest.importorskip("onnxruntime")
    from cnnzoo.speed.export import TOLERANCE

    tables = {}
    for runtime in ("eager", "onnxruntime"):
        tables[runtime] = tmp_path / f"{runtime}.csv"
        argv = ["predict", str(run_dir), str(folder / "test"), "--out", str(tables[runtime])]
        assert main([*argv, "--runtime", runtime, "--device", "cpu", "--quiet"]) == 0
        assert capsys.readouterr().err.startswith(runtime)  # the runtime's line comes first
    eager, exported = _rows(tables["eager"]), _rows(tables["onnxruntime"])
    assert len(eager) == TEST_IMAGES and eager.keys() == exported.keys()
    for path, row in eager.items():
        assert row["prediction"] == exported[path]["prediction"]
        probability = float(exported[path]["probability"])
        assert float(row["probability"]) == pytest.approx(probability, abs=TOLERANCE)


def test_auto_runs_a_short_job_eagerly_and_says_why(
    run_dir: Path, folder: Path, capsys: pytest.CaptureFixture
) -> None:
    argv = ["predict", str(run_dir), str(folder / "test" / "class_000"), "--device", "cpu"]
    assert main([*argv, "--quiet"]) == 0
    assert capsys.readouterr().err.startswith("auto: eager for 8 images, too few to measure")


@pytest.mark.parametrize(
    ("images", "fixed_size", "asked"),
    [(20 * 4, True, "auto"), (20 * 4 - 1, True, "eager"), (1000, False, "eager")],
)
def test_auto_measures_only_long_jobs_of_one_image_size(
    monkeypatch: pytest.MonkeyPatch, images: int, fixed_size: bool, asked: str
) -> None:
    import torch

    import cnnzoo.speed.runners as runners
    from cnnzoo.cli.inference import forward_maker

    chosen = []

    def recording(model: object, example: torch.Tensor, runtime: str) -> runners.Runner:
        chosen.append(runtime)
        return runners.Runner("eager", lambda images: images, "measured")

    monkeypatch.setattr(runners, "make_runner", recording)
    forward_maker("auto")(torch.nn.Identity(), torch.zeros(4, 1, 2, 2), images, fixed_size)
    assert chosen == [asked]


def test_an_image_that_cannot_be_decoded_is_skipped_and_named(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    Image.new("RGB", (24, 20), (10, 200, 10)).save(tmp_path / "good.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    assert main(["predict", str(run_dir), str(tmp_path), *FAST]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.strip().splitlines()) == 1 and "good.png" in captured.out
    assert "skipped 1 image file(s) that could not be read:" in captured.err
    assert "broken.png" in captured.err
    assert main(["predict", str(run_dir), str(tmp_path / "broken.png"), *FAST]) == 2
    err = capsys.readouterr().err
    assert "none of the image files could be read" in err and len(err.strip().splitlines()) == 1


def test_eval_refuses_a_report_folder_it_cannot_write(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "file.txt").write_text("kept")
    assert main(["eval", str(run_dir), "--out", str(tmp_path / "file.txt" / "r"), *FAST]) == 2
    err = capsys.readouterr().err
    assert "cannot write to the output" in err and len(err.strip().splitlines()) == 1
