"""Bad input is a one-line message, and the server keeps serving after each one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch


def _still_serving(server) -> None:
    status, answer = server.ask("/api/runs")
    assert status == 200 and answer["runs"]


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "is empty (0 bytes)"),
        (b"%PDF-1.4 not a picture", "is not an image cnnzoo can read"),
        (None, "megapixel limit"),  # a decompression bomb: a header declaring 120 megapixels
    ],
)
def test_a_bad_upload_is_refused_with_a_message(live_server, app_kit, data, words) -> None:
    data = app_kit.declared_giant_png() if data is None else data
    status, answer = live_server.ask("/api/images?name=upload.bin", data)
    assert status == 400 and words in answer["error"]
    _still_serving(live_server)


def test_a_truncated_image_is_refused(live_server, app_kit) -> None:
    status, answer = live_server.ask("/api/images?name=cut.png", app_kit.png_bytes()[:-40])
    assert status == 400 and "cut.png" in answer["error"]


def test_an_upload_over_the_size_limit_is_refused_before_it_is_read(live_server) -> None:
    from cnnzoo.app.uploads import MAX_UPLOAD_BYTES

    status, answer = live_server.ask("/api/images?name=big.png", b"\0" * (MAX_UPLOAD_BYTES + 1))
    assert status == 413 and "limit" in answer["error"]
    _still_serving(live_server)


def test_an_unknown_network_names_the_close_ones(live_server, app_kit) -> None:
    image = live_server.upload(app_kit.png_bytes())
    status, answer = live_server.ask(f"/api/inspect?source=model:resnet19&image={image}")
    assert status == 400 and "unknown model 'resnet19'" in answer["error"]
    assert "resnet18" in answer["error"]
    status, answer = live_server.ask("/api/network?name=alexnett")
    assert status == 400 and "alexnet" in answer["error"]
    _still_serving(live_server)


@pytest.mark.parametrize(
    "name",
    [
        "../runs",
        "..%2Fsecret",
        "%2e%2e/secret",
        "first/../../secret",
        "/etc",
        "%2Fetc",
        "first\\..\\..",
    ],
)
def test_a_run_outside_the_runs_folder_is_refused(live_server, name) -> None:
    for path in (
        "/api/run?run=",
        "/api/runs/compare?run=first&run=",
        "/api/inspect?image=x&source=run:",
    ):
        status, answer = live_server.ask(path + name)
        assert status == 400, (path, name, answer)
        assert "outside the runs folder" in answer["error"] or "not a run name" in answer["error"]
    _still_serving(live_server)


def test_a_symlink_out_of_the_runs_folder_is_refused(
    live_server, runs_root: Path, tmp_path
) -> None:
    outside = tmp_path / "elsewhere"
    (outside / "run").mkdir(parents=True)
    (outside / "run" / "log.csv").write_text("epoch\n1\n")
    os.symlink(outside / "run", runs_root / "linked")
    status, answer = live_server.ask("/api/run?run=linked")
    assert status == 400 and "outside the runs folder" in answer["error"]


class Payload:
    """Any object: unpickling it would run code of the reader's choosing."""


def test_a_checkpoint_holding_pickled_code_is_refused_as_the_cli_refuses_it(
    live_server, runs_root: Path, app_kit, capsys
) -> None:
    from cnnzoo.cli import main

    folder = app_kit.write_run(runs_root / "tampered")
    checkpoint = torch.load(folder / "best.pt", weights_only=True)
    torch.save({**checkpoint, "config": Payload()}, folder / "best.pt")
    image = live_server.upload(app_kit.png_bytes())
    status, answer = live_server.ask(f"/api/inspect?source=run:tampered&image={image}")
    assert status == 400 and "is refused: it holds Python objects" in answer["error"]
    assert main(["explain", str(folder), "x.png"]) == 2
    assert "is refused: it holds Python objects" in capsys.readouterr().err
    _still_serving(live_server)


def test_a_unit_outside_the_map_and_a_layer_without_a_map(live_server, app_kit) -> None:
    image = live_server.upload(app_kit.png_bytes())
    status, answer = live_server.ask(
        f"/api/unit?source=run:first&image={image}&layer=c1&row=99&column=0"
    )
    assert status == 400 and "outside c1's 28x28 map" in answer["error"]
    status, answer = live_server.ask(
        f"/api/unit?source=run:first&image={image}&layer=f6&row=0&column=0"
    )
    assert status == 400 and "no spatial map" in answer["error"]
    status, answer = live_server.ask(
        f"/api/unit?source=run:first&image={image}&layer=c1&row=x&column=0"
    )
    assert status == 400 and "whole number" in answer["error"]


def test_pretrained_weights_missing_from_the_cache_are_never_downloaded(
    live_server, app_kit, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "empty-hub"))
    status, answer = live_server.ask("/api/sources")
    assert status == 200 and answer["pretrained"] == []
    image = live_server.upload(app_kit.png_bytes())
    status, answer = live_server.ask(f"/api/inspect?source=pretrained:resnet18&image={image}")
    assert status == 400 and "never downloads" in answer["error"]
