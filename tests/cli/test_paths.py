"""writable_output: an output is checked before the work, and the check leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnzoo.cli.paths import writable_output
from cnnzoo.errors import CnnzooError


def test_a_new_file_in_missing_folders_is_accepted_and_nothing_is_left(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "model.onnx"
    assert writable_output(target, force=False) == target
    assert list(tmp_path.iterdir()) == []


def test_an_existing_file_needs_force_and_is_never_touched(tmp_path: Path) -> None:
    target = tmp_path / "model.onnx"
    target.write_text("earlier result")
    with pytest.raises(CnnzooError, match="already exists; pass --force to replace it"):
        writable_output(target, force=False)
    assert writable_output(target, force=True) == target
    assert target.read_text() == "earlier result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


def test_a_folder_refuses_only_the_files_it_would_replace(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    assert writable_output(tmp_path, force=False, directory=True, contents=["report.md"])
    (tmp_path / "report.md").write_text("earlier report")
    with pytest.raises(CnnzooError, match="report.md already exists"):
        writable_output(tmp_path, force=False, directory=True, contents=["report.*"])


@pytest.mark.parametrize("directory", [False, True])
def test_a_place_that_cannot_hold_files_is_one_clear_error(tmp_path: Path, directory: bool) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(CnnzooError, match="cannot write to the output .*; choose another --out"):
        writable_output(blocker / "inside" / "out", force=False, directory=directory)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_a_file_where_a_folder_is_wanted_and_the_reverse_are_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(CnnzooError, match="is a file, not a directory"):
        writable_output(tmp_path / "file", force=True, directory=True)
    with pytest.raises(CnnzooError, match="is a directory; name a file with --out"):
        writable_output(tmp_path, force=True)
