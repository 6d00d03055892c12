"""Writes that cannot be half-done, folders that are never lost, and one writer at a time.

Files: `write_atomic(path, write)` writes a temporary file beside `path`, then moves it onto
`path`.

Folders (a cached zoo, a result folder): `atomic_folder(path, owned=...)` yields a temporary
folder beside `path`. When the block succeeds, an existing `path` is first checked with
`owned(path)`: a folder that is not one wmplat wrote is refused (`NotOwnedError`), never
deleted. Then `path` is renamed to a backup, the temporary renamed onto `path`, and the backup
deleted. Temporaries and backups are named after the process that made them,
`.NAME.tmp-HOST-PID-RAND` and `.NAME.old-HOST-PID-RAND`, so that `clean_stale(parent)` can
finish what a killed process left: it deletes the temporaries of dead processes, puts a backup
back when its target is missing (a kill between the two renames) and deletes it when the target
exists. Items of live processes, and of other hosts, are left alone.

A writer holds `folder_lock(path)` (a lock file `.NAME.lock` beside `path`; taking it cleans
the parent), checks whether `path` is still what it wants to write, and only then writes:

    with folder_lock(target):
        if not is_current(target):
            with atomic_folder(target, owned=is_mine) as tmp:
                write_into(tmp)
"""

import os
import re
import secrets
import shutil
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import WmplatError
from .progress import status

_ITEM = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old)-(?P<host>.+)-(?P<pid>\d+)-[0-9a-f]{8}$")


class NotOwnedError(WmplatError):
    """A folder wmplat was about to replace is not one it wrote."""


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname()) or "host"


def _sibling(path: Path, kind: str) -> Path:
    """A fresh name beside `path` for a temporary (`tmp`) or a backup (`old`)."""
    return path.with_name(f".{path.name}.{kind}-{_host()}-{os.getpid()}-{secrets.token_hex(4)}")


def _alive(host: str, pid: int) -> bool:
    """Whether the process that made an item may still be using it (always, on another host)."""
    if host != _host() or os.name == "nt":  # on Windows os.kill(pid, 0) would kill it
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def clean_stale(parent: Path) -> None:
    """Finish what killed writers left in `parent`: delete their temporaries; restore each
    backup whose target is missing, delete it when the target exists. Call it under the
    `folder_lock` of the targets about to be written."""
    if not parent.is_dir():
        return
    for item in sorted(parent.iterdir()):
        match = _ITEM.match(item.name)
        if match is None or _alive(match["host"], int(match["pid"])):
            continue
        target = parent / match["name"]
        if match["kind"] == "old" and not (target.exists() or target.is_symlink()):
            os.replace(item, target)
        else:
            _remove(item)


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Call write(tmp) on a temporary file beside `path`, then move it onto `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(path, "tmp")
    os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _check_owned(path: Path, owned: Callable[[Path], bool]) -> None:
    if (path.exists() or path.is_symlink()) and not owned(path):
        raise NotOwnedError(f"{path} exists and is not a folder wmplat wrote; refusing to "
                            "replace it: move it away or choose another name")


@contextmanager
def atomic_folder(path: Path, *, owned: Callable[[Path], bool]) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; on success it replaces `path` whole. An
    existing `path` must pass `owned(path)`, checked before the block and before replacing."""
    _check_owned(path, owned)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(path, "tmp")
    tmp.mkdir()
    backup = None
    try:
        yield tmp
        _check_owned(path, owned)
        if path.exists() or path.is_symlink():
            backup = _sibling(path, "old")
            os.replace(path, backup)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if backup is not None and not (path.exists() or path.is_symlink()):
            os.replace(backup, path)
        raise
    if backup is not None:
        _remove(backup)


@contextmanager
def folder_lock(path: Path) -> Iterator[None]:
    """Hold the lock of `path` (the file `.NAME.lock` beside it) for as long as the block
    runs, saying so on stderr when another process holds it; once it is held, finish what
    killed writers left beside `path` (`clean_stale`), so that the block sees it whole."""
    from filelock import Timeout

    lock = _lock_of(path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        status(f"waiting for another wmplat process writing {path} ...")
        lock.acquire()
    try:
        clean_stale(path.parent)
        yield
    finally:
        lock.release()


def try_lock(path: Path):
    """`folder_lock` without waiting: the held lock (release it when done), or None if another
    process holds it."""
    from filelock import Timeout

    lock = _lock_of(path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return None
    try:
        clean_stale(path.parent)
    except BaseException:
        lock.release()
        raise
    return lock


def _lock_of(path: Path):
    from filelock import FileLock

    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(path.with_name(f".{path.name}.lock"))
