"""Writes are whole or absent: an error midway leaves the previous state untouched."""

import pytest

from wmplat.atomic import atomic_folder, write_text_atomic


def test_a_failed_folder_write_leaves_nothing_behind(tmp_path):
    target = tmp_path / "zoo"
    with pytest.raises(KeyboardInterrupt):
        with atomic_folder(target) as tmp:
            (tmp / "weights.safetensors").write_text("partial")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_a_failed_rewrite_keeps_the_old_folder(tmp_path):
    target = tmp_path / "zoo"
    with atomic_folder(target) as tmp:
        (tmp / "manifest.json").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_folder(target) as tmp:
            (tmp / "manifest.json").write_text("new, half")
            raise RuntimeError("disk full")
    assert (target / "manifest.json").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["zoo"]


def test_a_successful_rewrite_replaces_the_folder_whole(tmp_path):
    target = tmp_path / "zoo"
    for text in ("old", "new"):
        with atomic_folder(target) as tmp:
            (tmp / "manifest.json").write_text(text)
    assert (target / "manifest.json").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["zoo"]


def test_a_failed_file_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "result.json"
    write_text_atomic(path, "old")
    with pytest.raises(TypeError):
        write_text_atomic(path, None)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]
