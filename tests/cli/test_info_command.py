"""``cnnzoo info``: the layer table in every format, depth filtering and --verify-rf."""

from __future__ import annotations

import json

import pytest

from cnnzoo.cli import main


def _run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    status = main(["info", *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_table_lists_every_layer_and_the_totals(capsys: pytest.CaptureFixture) -> None:
    status, out, _ = _run(capsys, "lenet5", "--input", "1,32,32", "--num-classes", "10")
    assert status == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["layer", "type", "output"]
    c1 = next(line.split() for line in lines if line.startswith("c1.0 "))
    # C1: 6 maps of 28x28 from 5x5 kernels: 156 weights, 2 * 6*28*28*25 FLOPs, field 5.
    assert c1 == ["c1.0", "Conv2d", "6x28x28", "156", "235K", "1", "5"]
    total = next(line.split() for line in lines if line.startswith("total"))
    assert total[1] == "61,706" and total[-1] == "global"
    assert "GMACs" in out


def test_depth_limits_the_nesting(capsys: pytest.CaptureFixture) -> None:
    _, out, _ = _run(capsys, "lenet5", "--depth", "1", "--format", "csv")
    names = [line.split(",")[0] for line in out.splitlines()[1:]]
    assert names == ["c1", "s2", "c3", "s4", "c5", "f6", "output"]
    _, out, _ = _run(capsys, "lenet5", "--format", "csv")
    assert "c1.0" in [line.split(",")[0] for line in out.splitlines()]


def test_json_and_markdown(capsys: pytest.CaptureFixture) -> None:
    _, out, _ = _run(capsys, "lenet5", "--format", "json", "--input", "1,64,64")
    document = json.loads(out)
    assert document["input_shape"] == [1, 64, 64]
    assert document["total_flops"] == 2 * document["total_macs"] > 0
    by_name = {layer["name"]: layer for layer in document["layers"]}
    assert by_name["s4"]["receptive_field"] == [16, 16] and by_name["s4"]["stride"] == [4, 4]
    assert by_name["output"]["global"] is True
    _, out, _ = _run(capsys, "lenet5", "--format", "markdown", "--depth", "1")
    assert out.startswith("| layer | type | output |")
    assert "| s2 | AvgPool2d | 6x14x14 |" in out


def test_verify_rf_reports_both_values(capsys: pytest.CaptureFixture) -> None:
    status, out, _ = _run(capsys, "lenet5", "--verify-rf", "--depth", "1")
    assert status == 0
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["layer", "unit"])
    rows = [
        line.split() for line in lines[start + 2 :] if line and line.split()[-1] in ("yes", "NO")
    ]
    # LeNet-5's stages: S2 (5x5 conv + 2x2 pool) sees 6x6, S4 sees 16x16; C5's 5x5
    # convolution on the 5x5 S4 map sees all 32x32 pixels.
    assert rows == [
        ["s2", "(7,7)", "6", "6", "6", "yes"],
        ["s4", "(2,2)", "16", "16", "16", "yes"],
        ["c5.2", "(0,0)", "32", "32", "32", "yes"],
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["resnett50"], "unknown model"),
        (["lenet5", "--depth", "0"], "--depth must be at least 1"),
        (["lenet5", "--input", "1,8,8"], "at least 32x32"),
    ],
)
def test_mistakes_are_one_line_errors(
    capsys: pytest.CaptureFixture, argv: list[str], message: str
) -> None:
    status, _, err = _run(capsys, *argv)
    assert status == 2
    assert message in err and len(err.strip().splitlines()) == 1
