"""Zoos by name: the registry (`registry.yaml`), the local cache under $WMPLAT_HOME, and
opening a zoo by name or by folder."""

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from .atomic import atomic_folder, clean_stale, folder_lock
from .errors import ConfigError, PluginError, ZooError
from .home import home
from .plugins import Plugins
from .progress import status
from .registry import unknown_name_message
from .schema import ZooEntry, ZooRegistryFile, check_schema_version, parse_model
from .zoo import MANIFEST, Zoo, load_zoo, read_manifest, write_zoo

REGISTRY_ENV = "WMPLAT_REGISTRY"


def builtin_registry_path() -> Path:
    packaged = Path(__file__).with_name("registry.yaml")
    return packaged if packaged.is_file() else Path(__file__).parent.parent / "registry.yaml"


def read_registry(path: Path) -> dict[str, ZooEntry]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ZooError(f"{path}: cannot read zoo registry ({exc})") from None
    check_schema_version(data, str(path), ZooError)
    return parse_model(ZooRegistryFile, data, str(path), ZooError).zoos


@dataclass
class KnownZoo:
    name: str
    entry: ZooEntry

    def cache_path(self) -> Path:
        return home() / "zoos" / self.name


def registry_paths() -> list[Path]:
    """The built-in registry, then the user's files from WMPLAT_REGISTRY (`--registry`), each
    extending the ones before it; a later file's entry replaces an earlier one of that name."""
    extra = os.environ.get(REGISTRY_ENV, "")
    return [builtin_registry_path(), *(Path(p) for p in extra.split(os.pathsep) if p)]


def known_zoos(plugins: Plugins) -> dict[str, KnownZoo]:
    """The registries' zoos, plus a local zoo for every task that can build one."""
    zoos = {name: KnownZoo(name, entry) for path in registry_paths()
            for name, entry in read_registry(path).items()}
    for entry in plugins.datasets.entries():
        if entry.name not in zoos and entry.cls.can_build_zoo():
            zoos[entry.name] = KnownZoo(entry.name, ZooEntry(
                source="local", task=entry.name, description=entry.cls.description))
    return zoos


def find_zoo(name: str, plugins: Plugins, zoos: dict[str, KnownZoo] | None = None) -> KnownZoo:
    zoos = known_zoos(plugins) if zoos is None else zoos
    if name not in zoos:
        raise ZooError(unknown_name_message("zoo", name, list(zoos))
                       + "; or give the path of a zoo folder")
    return zoos[name]


def is_wmplat_zoo(folder: Path) -> bool:
    """Whether `folder` holds a manifest.json that wmplat wrote (`provenance.built_by`): the
    only kind of folder the cache replaces."""
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    provenance = data.get("provenance") if isinstance(data, dict) else None
    built_by = provenance.get("built_by") if isinstance(provenance, dict) else None
    return isinstance(built_by, str) and built_by.startswith("wmplat ")


def build_zoo(known: KnownZoo, plugins: Plugins) -> Path:
    """Train a local zoo and write it into the cache, whole or not at all."""
    if known.entry.source != "local":
        raise ZooError(f"zoo {known.name!r} comes from the Hub ({known.entry.repo_id}); "
                       "it is pulled, not built")
    with folder_lock(known.cache_path()):
        clean_stale(known.cache_path().parent)
        return _build(known, plugins)


def _build(known: KnownZoo, plugins: Plugins) -> Path:
    """Train and write the zoo; the caller holds the folder's lock."""
    task = plugins.datasets.get(known.entry.task).cls()
    status(f"building zoo {known.name!r} (task {task.name}) under {known.cache_path()} ...")
    start = time.perf_counter()
    try:
        built = task.build_zoo()
    except Exception as exc:  # a dataset plugin's training may raise anything
        provider = plugins.datasets.get(known.entry.task).provider
        raise PluginError(f"task {task.name!r} ({provider}) failed to build zoo "
                          f"{known.name!r}: {type(exc).__name__}: {exc}") from exc
    with atomic_folder(known.cache_path(), owned=is_wmplat_zoo) as tmp:
        write_zoo(tmp, known.name, task, built, {"task_version": task.version})
    status(f"built zoo {known.name!r}: {len(built.models)} models "
           f"in {time.perf_counter() - start:.1f}s")
    return known.cache_path()


def _is_current(known: KnownZoo, plugins: Plugins) -> bool:
    folder = known.cache_path()
    if not (folder / MANIFEST).is_file():
        return False
    task_cls = plugins.datasets.get(known.entry.task).cls
    try:
        return read_manifest(folder).provenance.get("task_version") == task_cls.version
    except ZooError:
        return True  # let loading report what is wrong rather than silently rebuilding


def open_zoo(name_or_path: str, plugins: Plugins, revision: str | None = None) -> Zoo:
    """A zoo by registry name (built on first use, or pulled from the Hub at its pinned
    revision, or at `revision`) or by the path of a zoo folder. A name the registry knows wins
    over a folder of the same name; write ./NAME to mean the folder."""
    zoos = known_zoos(plugins)
    if name_or_path not in zoos and (os.sep in name_or_path or Path(name_or_path).is_dir()):
        _no_revision(revision, f"the zoo folder {name_or_path}")
        return _open_folder(Path(name_or_path), plugins)
    known = find_zoo(name_or_path, plugins, zoos)
    if known.entry.source == "hub":
        return pull(known, plugins, revision)
    _no_revision(revision, f"zoo {known.name!r}, which is built locally")
    if not _is_current(known, plugins):
        with folder_lock(known.cache_path()):
            clean_stale(known.cache_path().parent)
            if not _is_current(known, plugins):  # another process built it while we waited
                _build(known, plugins)
    task = plugins.datasets.get(known.entry.task).cls()
    return load_zoo(known.cache_path(), task)


def pull(known: KnownZoo, plugins: Plugins, revision: str | None = None) -> Zoo:
    """A Hub zoo at its pinned revision (or `revision`), from the cache or downloaded."""
    from .hub.zoos import pull_zoo

    if known.entry.source != "hub":
        raise ZooError(f"zoo {known.name!r} is built locally, not pulled: "
                       f"`wmplat zoo build {known.name}`")
    entry = known.entry
    task = _task(entry.task, plugins, f"zoo {known.name!r}")
    return pull_zoo(known.name, entry.repo_id, entry.repo_type, revision or entry.revision, task)


def _task(name: str, plugins: Plugins, who: str):
    if name not in plugins.datasets.names():
        raise ZooError(f"{who} needs " + unknown_name_message(
            "task", name, plugins.datasets.names()) + "; install the dataset plugin that "
            "provides it")
    return plugins.datasets.get(name).cls()


def _no_revision(revision: str | None, what: str) -> None:
    if revision is not None:
        raise ConfigError(f"--revision is for zoos pulled from the Hub, not for {what}")


def _open_folder(path: Path, plugins: Plugins) -> Zoo:
    manifest = read_manifest(path)
    return load_zoo(path, _task(manifest.task, plugins, str(path / MANIFEST)))
