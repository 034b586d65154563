"""Atomic writes: the file is replaced whole or not at all, and nothing is left behind."""

import pytest

from physnode._atomic import atomic_path, write_text_atomic


def test_write_text_atomic_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "report.md"
    assert write_text_atomic(path, "first\n") == path
    write_text_atomic(path, "second\n")
    assert path.read_text() == "second\n"
    assert [p.name for p in path.parent.iterdir()] == ["report.md"]


def test_an_interrupted_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "equations.json"
    write_text_atomic(path, "old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(path) as tmp:
            open(tmp, "w").write("half")
            raise KeyboardInterrupt
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["equations.json"]
