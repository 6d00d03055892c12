"""Writes are whole or absent: an error midway leaves the previous state untouched, a process
killed midway leaves what `clean_stale` puts right, and a folder wmplat did not write is never
replaced."""

import os
import subprocess
import sys
import textwrap

import pytest
from killing import KILLED, run_killed

from wmplat.engine.atomic import (
    NotOwnedError,
    atomic_folder,
    clean_stale,
    folder_lock,
    write_text_atomic,
)


def mine(folder):
    return (folder / "manifest.json").is_file()


def write_folder(target, text):
    with atomic_folder(target, owned=mine) as tmp:
        (tmp / "manifest.json").write_text(text)


def test_a_failed_folder_write_leaves_nothing_behind(tmp_path):
    target = tmp_path / "zoo"
    with pytest.raises(KeyboardInterrupt):
        with atomic_folder(target, owned=mine) as tmp:
            (tmp / "weights.safetensors").write_text("partial")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_a_failed_rewrite_keeps_the_old_folder(tmp_path):
    target = tmp_path / "zoo"
    write_folder(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_folder(target, owned=mine) as tmp:
            (tmp / "manifest.json").write_text("new, half")
            raise RuntimeError("disk full")
    assert (target / "manifest.json").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["zoo"]


def test_a_successful_rewrite_replaces_the_folder_whole(tmp_path):
    target = tmp_path / "zoo"
    for text in ("old", "new"):
        write_folder(target, text)
    assert (target / "manifest.json").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["zoo"]


def test_a_folder_wmplat_did_not_write_is_refused_not_replaced(tmp_path):
    target = tmp_path / "victim"
    target.mkdir()
    (target / "thesis.tex").write_text("years of work")
    with pytest.raises(NotOwnedError, match="victim exists and is not a folder wmplat wrote"):
        write_folder(target, "zoo")
    assert [p.name for p in target.iterdir()] == ["thesis.tex"]
    assert [p.name for p in tmp_path.iterdir()] == ["victim"]


def test_a_failed_file_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "result.json"
    write_text_atomic(path, "old")
    with pytest.raises(TypeError):
        write_text_atomic(path, None)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


# A child process that replaces `zoo` (holding "old") with "new", killed at a rename (killing.py).
WRITER = textwrap.dedent("""
    from pathlib import Path
    from wmplat.engine.atomic import atomic_folder

    with atomic_folder(Path(sys.argv[1]), owned=lambda p: True) as tmp:
        (tmp / "manifest.json").write_text("new")
""")


@pytest.mark.parametrize("k, when", [(1, "before"), (2, "before"), (1, "after"), (2, "after")])
def test_a_writer_killed_midway_loses_nothing(tmp_path, k, when):
    target = tmp_path / "zoo"
    write_folder(target, "old")
    child = run_killed(WRITER, [str(target)], k, when)
    assert child.returncode == KILLED, child.stderr
    assert len(list(tmp_path.iterdir())) > 1, "the kill left something to clean"
    clean_stale(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["zoo"]
    # the old folder until the new one is in place, then the new one
    expected = "new" if (k, when) in {(2, "after")} else "old"
    assert (target / "manifest.json").read_text() == expected


def test_clean_stale_leaves_the_items_of_live_processes(tmp_path):
    target = tmp_path / "zoo"
    write_folder(target, "old")
    with atomic_folder(target, owned=mine) as tmp:
        (tmp / "manifest.json").write_text("new")
        clean_stale(tmp_path)              # this process is alive: its temporary stays
        assert tmp.is_dir()
    assert (target / "manifest.json").read_text() == "new"


def test_the_folder_lock_is_held_by_one_process_at_a_time(tmp_path):
    target = tmp_path / "zoo"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from wmplat.engine.atomic import folder_lock
        with folder_lock(Path({str(target)!r})):
            print("locked", flush=True)
            sys.stdin.readline()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "locked\n"
    from filelock import FileLock, Timeout

    with pytest.raises(Timeout):
        FileLock(tmp_path / ".zoo.lock").acquire(timeout=0.2)
    holder.communicate("\n")
    with folder_lock(target):
        assert (tmp_path / ".zoo.lock").exists()
    assert os.listdir(tmp_path) == [".zoo.lock"]
