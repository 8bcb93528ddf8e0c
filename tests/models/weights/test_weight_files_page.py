"""The guide's table of weight files is the list cnnzoo.models.weights.weight_files() computes."""

from __future__ import annotations

from pathlib import Path

from cnnzoo.models.weights import weight_files

PAGE = Path(__file__).resolve().parents[3] / "docs" / "guide" / "pretrained.md"


def test_the_guides_table_lists_every_weight_file_in_order() -> None:
    text = PAGE.read_text()
    table = text.split("<!-- weight files -->")[1].split("<!-- /weight files -->")[0]
    rows = [line for line in table.strip().splitlines()[2:]]
    expected = [f"| `{name}` | `{arch}` | `{file}` |" for name, arch, file in weight_files()]
    assert rows == expected
    assert "`vgg11-8a719046.pth`" in table
