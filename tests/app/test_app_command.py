"""`cnnzoo app` as a user starts it: the address it prints, where it listens, its first answer."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_command_listens_on_loopback_says_so_and_answers(tmp_path: Path) -> None:
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    for display in ("DISPLAY", "WAYLAND_DISPLAY"):
        environment.pop(display, None)
    command = [
        sys.executable,
        "-m",
        "cnnzoo",
        "app",
        "--port",
        "0",
        "--runs",
        str(tmp_path),
        "--run",
        "demo",
        "--open",
    ]
    started = time.monotonic()
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment
    )
    try:
        line = process.stdout.readline()
        assert "http://127.0.0.1:" in line and "this machine only" in line, line
        url = line.split("serving ")[1].split()[0]
        assert url.endswith("/#run=demo")
        assert "no browser to open here" in process.stdout.readline()  # and no console browser
        with urllib.request.urlopen(url.split("#")[0], timeout=60) as response:
            page = response.read().decode()
        first_answer = time.monotonic() - started
        assert response.status == 200 and "<title>cnnzoo</title>" in page
        print(f"first answer {first_answer:.2f} s after start")
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.mark.parametrize(
    ("arguments", "words"),
    [(["--port", "70000"], "--port must be in 0..65535"), (["--cache", "0"], "at least 1 network")],
)
def test_bad_options_are_one_line_errors(arguments, words, capsys) -> None:
    from cnnzoo.cli import main

    assert main(["app", *arguments]) == 2
    assert words in capsys.readouterr().err


def test_a_port_in_use_is_a_one_line_error(capsys) -> None:
    from cnnzoo.app.server import bind
    from cnnzoo.cli import main

    taken = bind("127.0.0.1", 0)
    try:
        assert main(["app", "--port", str(taken.getsockname()[1])]) == 2
    finally:
        taken.close()
    assert "choose another --port" in capsys.readouterr().err


def test_starting_the_server_leaves_the_heavy_modules_for_the_first_question() -> None:
    # The first page must answer within seconds of `cnnzoo app`: torchvision, matplotlib and
    # the model families load when a network is first asked for, not at start.
    heavy = (
        "{'torchvision', 'matplotlib', 'cnnzoo.models.classification', "
        "'cnnzoo.models.segmentation', 'cnnzoo.analysis'}"
    )
    code = (
        "import sys, cnnzoo.cli, cnnzoo.app.server; cnnzoo.cli.build_parser(only='app'); "
        "cnnzoo.app.server.create_app(); "
        f"print(sorted({heavy} & set(sys.modules)))"
    )
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environment, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
