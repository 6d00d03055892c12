"""How a sweep's zoos reach its workers: by path where a worker sees the driver's folder (one
machine, or a shared file system), else as the folder's bytes through Ray's object store,
written once per machine into a local cache. Either way the worker loads and verifies the zoo
exactly as the driver did (file hashes, shapes, values) and keeps the driver's revision, so its
rows land in the same results folder.
"""

import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from ..engine.atomic import atomic_folder, folder_lock
from ..errors import ZooError
from ..zoo.format import MANIFEST, Zoo, load_zoo, read_manifest, sha256_file

CACHE_ENV = "WMPLAT_SWEEP_CACHE"


@dataclass(frozen=True)
class ZooSource:
    """A zoo as the driver opened it, in plain values a worker can be sent."""

    name: str
    revision: str | None
    task: str | None            # a registered task's name; None: the zoo's own task file
    folder: str
    within: str | None          # where its files may lead, if outside the folder (Hub cache)
    manifest_sha256: str

    @property
    def key(self) -> str:
        return f"{self.name}@{self.revision}:{self.manifest_sha256[:12]}"

    def as_dict(self) -> dict:
        return asdict(self)


def zoo_source(zoo: Zoo) -> ZooSource:
    folder = Path(zoo.folder)
    return ZooSource(
        name=zoo.name, revision=zoo.revision,
        task=None if zoo.manifest.task_file is not None else zoo.task.name,
        folder=str(folder.resolve()), within=None if zoo.within is None else str(zoo.within),
        manifest_sha256=sha256_file(folder / MANIFEST))


def visible(source: ZooSource) -> bool:
    """Whether this machine sees the driver's folder of the zoo, unchanged."""
    path = Path(source.folder) / MANIFEST
    try:
        return path.is_file() and sha256_file(path) == source.manifest_sha256
    except OSError:
        return False


def zoo_files(source: ZooSource) -> dict[str, bytes]:
    """The zoo's files by relative path (the manifest and every file it lists), to ship."""
    folder = Path(source.folder)
    manifest = read_manifest(folder)
    names = [MANIFEST, *(f.path for f in manifest.files)]
    return {name: (folder / name).read_bytes() for name in names}


def open_source(source: ZooSource, task, fetch_files=None) -> Zoo:
    """The zoo from the driver's folder if this machine sees it, else from a local copy of the
    shipped files (`fetch_files()` returns them; fetched again if the copy fails its checks);
    `task` is the registered task (None for a zoo with its own task file)."""
    if visible(source):
        within = None if source.within is None else Path(source.within)
        return load_zoo(Path(source.folder), task, revision=source.revision, within=within)
    if fetch_files is None:
        why = "has changed since the sweep began" if (Path(source.folder) / MANIFEST).is_file() \
            else "is not on this machine"
        raise ZooError(f"zoo {source.name!r}: its folder {source.folder} {why}, and the driver "
                       "shipped no copy; keep a zoo's folder unchanged while a sweep runs, and "
                       "run the sweep again")
    try:
        return load_zoo(_local_copy(source, fetch_files), task, revision=source.revision)
    except ZooError:                # a damaged copy fails the hash check: write it again, once
        return load_zoo(_local_copy(source, fetch_files, again=True), task,
                        revision=source.revision)


def cache_dir() -> Path:
    """Where workers keep shipped zoos: ${CACHE_ENV}, else the system's temporary folder."""
    return Path(os.environ.get(CACHE_ENV) or Path(tempfile.gettempdir()) / "wmplat-sweep-zoos")


def _local_copy(source: ZooSource, fetch_files, again: bool = False) -> Path:
    """The shipped zoo written once on this machine (under a lock: several workers share it);
    `again`: written anew, whatever copy there is."""
    folder = cache_dir() / f"{source.name}-{source.manifest_sha256[:16]}"
    with folder_lock(folder):
        if not again and (folder / MANIFEST).is_file() and \
                sha256_file(folder / MANIFEST) == source.manifest_sha256:
            return folder
        files = fetch_files()
        with atomic_folder(folder, owned=lambda p: (p / MANIFEST).is_file()) as tmp:
            for name, data in files.items():
                (tmp / name).parent.mkdir(parents=True, exist_ok=True)
                (tmp / name).write_bytes(data)
    return folder
