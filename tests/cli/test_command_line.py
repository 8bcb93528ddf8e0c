"""The command line as a whole: full flag names only, quiet closed pipes, ``--quiet`` everywhere."""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

import cnnzoo.cli
from cnnzoo.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_parser_refuses_abbreviated_flags() -> None:
    top = build_parser()
    parsers = [top, *_subparsers(top).values()]
    parsers += _subparsers(_subparsers(top)["experiment"]).values()
    assert all(parser.allow_abbrev is False for parser in parsers)


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["train", "--epoch", "3"], "--epoch"),
        (["eval", "run", "--spl", "val"], "--spl"),
        (["experiment", "run", "x", "--qui"], "--qui"),
    ],
)
def test_an_abbreviated_flag_is_an_error(
    argv: list[str], flag: str, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert f"unrecognized arguments: {flag}" in capsys.readouterr().err


def test_a_closed_pipe_ends_quietly_with_the_status_head_expects(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has gone, as `head -1` goes after one line
    closed = io.TextIOWrapper(io.FileIO(write_end, "w"), write_through=True)
    monkeypatch.setattr(sys, "stdout", closed)
    try:
        assert main(["list", "lenet*"]) == 141
    finally:
        closed.close()
    assert capsys.readouterr().err == ""


def test_list_into_a_pipe_closed_at_once_shows_no_traceback() -> None:
    # `head -c 0` exits without reading: every write of `cnnzoo list` meets a closed pipe.
    result = subprocess.run(
        ["bash", "-c", f"{sys.executable} -m cnnzoo list 'lenet*' | head -c 0; "
                       "echo ${PIPESTATUS[0]}"],
        capture_output=True, text=True, cwd=ROOT, env=_environment(), timeout=300,
    )  # fmt: skip
    assert result.stderr == ""
    assert result.stdout.strip() in ("0", "141")


@pytest.mark.slow
def test_list_piped_into_head_never_shows_a_traceback() -> None:
    for _ in range(10):
        result = subprocess.run(
            ["bash", "-c", f"{sys.executable} -m cnnzoo list | head -1"],
            capture_output=True, text=True, cwd=ROOT, env=_environment(), timeout=300,
        )  # fmt: skip
        assert result.stdout.startswith("model") and result.stderr == ""


def _environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.mark.parametrize(
    "argv",
    [
        ["eval", "run"],
        ["predict", "run", "image.png"],
        ["benchmark", "lenet5"],
        ["compare", "lenet5"],
        ["explain", "lenet5", "image.png"],
        ["experiment", "run", "x"],
        ["train"],
    ],
)
def test_each_verb_a_person_waits_for_takes_quiet(argv: list[str]) -> None:
    assert build_parser().parse_args([*argv, "--quiet"]).quiet is True


def test_quiet_turns_the_progress_bars_off(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bool] = []
    monkeypatch.setattr(cnnzoo.cli, "set_quiet", calls.append)
    main(["experiment", "list"])
    argv = ["benchmark", "lenet5", "--iters", "1", "--warmup", "0", "--batch-size", "1"]
    main([*argv, "--threads", "1", "--quiet"])
    assert calls == [False, True]


def test_a_missing_optional_package_names_its_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import cnnzoo.cli.list_models

    def without_scikit_learn(args: argparse.Namespace) -> int:
        raise ModuleNotFoundError("No module named 'sklearn'", name="sklearn")

    monkeypatch.setattr(cnnzoo.cli.list_models, "run", without_scikit_learn)
    assert main(["list"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'cnnzoo[demo]'" in err
