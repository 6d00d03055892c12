"""Zoos by name: the registry (`registry.yaml`), the local cache under $WMPLAT_HOME, and
opening a zoo by name or by folder."""

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import yaml
from safetensors.torch import load_file

from ..engine.atomic import atomic_folder, folder_lock
from ..engine.progress import status
from ..errors import ConfigError, PluginError, ZooError
from ..names import check_name, name_error
from ..plugins import Plugins
from ..plugins.registry import unknown_name_message
from ..schema import FILE_TASK, ZooEntry, ZooRegistryFile, parse_versioned
from ..task import BuiltZoo, ShippedZoo, Task
from .format import (
    MANIFEST,
    WEIGHTS,
    Zoo,
    load_zoo,
    read_manifest,
    sha256_file,
    verify_files,
    write_zoo,
)
from .home import home

REGISTRY_ENV = "WMPLAT_REGISTRY"


def builtin_registry_path() -> Path:
    packaged = Path(__file__).with_name("registry.yaml")  # in a wheel
    return packaged if packaged.is_file() else Path(__file__).parents[2] / "registry.yaml"


def read_registry(path: Path) -> dict[str, ZooEntry]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ZooError(f"{path}: cannot read zoo registry ({exc})") from None
    return parse_versioned(ZooRegistryFile, data, str(path), ZooError).zoos


@dataclass
class KnownZoo:
    name: str
    entry: ZooEntry

    def __post_init__(self):
        check_name("zoo", self.name, error=ZooError)  # it names a folder under $WMPLAT_HOME

    def cache_path(self) -> Path:
        return home() / "zoos" / self.name


def registry_paths() -> list[Path]:
    """The built-in registry, then the user's files from WMPLAT_REGISTRY (`--registry`), each
    extending the ones before it; a later file's entry replaces an earlier one of that name."""
    extra = os.environ.get(REGISTRY_ENV, "")
    return [builtin_registry_path(), *(Path(p) for p in extra.split(os.pathsep) if p)]


def known_zoos(plugins: Plugins) -> dict[str, KnownZoo]:
    """The registries' zoos, a local zoo for every task that can build or ships one, and the
    zoos imported into the cache (`wmplat zoo import`)."""
    zoos = {name: KnownZoo(name, entry) for path in registry_paths()
            for name, entry in read_registry(path).items()}
    for entry in plugins.datasets.entries():
        ships = entry.cls.shipped_zoo.__func__ is not Task.shipped_zoo.__func__
        if entry.name not in zoos and (entry.cls.can_build_zoo() or ships):
            zoos[entry.name] = KnownZoo(entry.name, ZooEntry(
                source="local", task=entry.name, description=entry.cls.description))
    for name, description in imported_zoos().items():
        zoos.setdefault(name, KnownZoo(name, ZooEntry(source="local", task=FILE_TASK,
                                                      description=description)))
    return zoos


def is_imported_zoo(folder: Path) -> bool:
    """Whether `folder` holds a zoo that `wmplat zoo import` wrote: wmplat's, carrying its
    task file, and recording where it was imported from."""
    if not is_wmplat_zoo(folder):
        return False
    data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    return bool(data.get("task_file")) and "imported_from" in data["provenance"]


def imported_zoos() -> dict[str, str]:
    """The imported zoos in the cache, by name, each with a description."""
    root = home() / "zoos"
    if not root.is_dir():
        return {}
    found = {}
    for folder in sorted(root.iterdir()):
        if name_error("zoo", folder.name) is None and is_imported_zoo(folder):
            source = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))["provenance"]
            found[folder.name] = (f"imported ({source.get('format')}) from "
                                  f"{source['imported_from']}")
    return found


def find_zoo(name: str, plugins: Plugins, zoos: dict[str, KnownZoo] | None = None) -> KnownZoo:
    if problem := name_error("zoo", name):
        raise ZooError(problem + "; or give the path of a zoo folder")
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


def write_built_zoo(folder: Path, name: str, task: Task, built: BuiltZoo) -> None:
    """What `wmplat zoo build` writes for a freshly trained zoo."""
    write_zoo(folder, name, task, built, {"task_version": task.version})


def build_zoo(known: KnownZoo, plugins: Plugins) -> tuple[Path, str | None]:
    """Train a local zoo and write it into the cache, whole or not at all. For a task that
    ships its zoo, also say whether this machine reproduced it bit for bit (if so, the cache
    holds the shipped files, so the revision is the shipped one)."""
    _check_local(known)
    with folder_lock(known.cache_path()):
        return _build(known, plugins)


def install_shipped(known: KnownZoo, plugins: Plugins) -> Path:
    """Put the zoo shipped with the task's package into the cache, replacing what is there."""
    _check_local(known)
    task = plugins.datasets.get(known.entry.task).cls()
    shipped = _shipped(known, plugins)
    if shipped is None:
        raise ConfigError(f"task {task.name!r} ships no zoo; `wmplat zoo build {known.name}` "
                          "trains it here")
    with folder_lock(known.cache_path()):
        _install(known, task, shipped)
    return known.cache_path()


def _check_local(known: KnownZoo) -> None:
    if known.entry.source != "local":
        raise ZooError(f"zoo {known.name!r} comes from the Hub ({known.entry.repo_id}); "
                       "it is pulled, not built")
    if known.entry.task == FILE_TASK:
        raise ZooError(f"zoo {known.name!r} was imported ({known.entry.description}), not "
                       "built: `wmplat zoo import` it again to replace it")


def _shipped(known: KnownZoo, plugins: Plugins) -> ShippedZoo | None:
    """The task's shipped zoo, for the zoo named after the task (another name trains)."""
    entry = plugins.datasets.get(known.entry.task)
    if known.name != entry.name:
        return None
    try:
        shipped = entry.cls.shipped_zoo()
    except Exception as exc:  # a dataset plugin's hook may raise anything
        raise PluginError(f"task {entry.name!r} ({entry.provider}) failed to give its shipped "
                          f"zoo: {type(exc).__name__}: {exc}") from exc
    if shipped is not None and not isinstance(shipped, ShippedZoo):
        raise PluginError(f"task {entry.name!r} ({entry.provider}): shipped_zoo() returned "
                          f"{shipped!r}, not a wmplat.ShippedZoo or None")
    return shipped


def _build(known: KnownZoo, plugins: Plugins) -> tuple[Path, str | None]:
    """Train and write the zoo; the caller holds the folder's lock."""
    task = plugins.datasets.get(known.entry.task).cls()
    shipped = _shipped(known, plugins)
    status(f"building zoo {known.name!r} (task {task.name}) under {known.cache_path()} ...")
    start = time.perf_counter()
    verdict = None
    # opened first, so that a folder that may not be replaced is refused before training
    with atomic_folder(known.cache_path(), owned=is_wmplat_zoo) as tmp:
        try:
            built = task.build_zoo()
        except Exception as exc:  # a dataset plugin's training may raise anything
            provider = plugins.datasets.get(known.entry.task).provider
            raise PluginError(f"task {task.name!r} ({provider}) failed to build zoo "
                              f"{known.name!r}: {type(exc).__name__}: {exc}") from exc
        write_built_zoo(tmp, known.name, task, built)
        if shipped is not None:
            verdict = _reproduction(known.name, tmp, shipped, task)
    status(f"built zoo {known.name!r}: {len(built.models)} models "
           f"in {time.perf_counter() - start:.1f}s")
    return known.cache_path(), verdict


def _reproduction(name: str, built: Path, shipped: ShippedZoo, task: Task) -> str:
    """Whether the zoo just built in `built` has the shipped weights bit for bit; if it has,
    its files are replaced by the shipped ones."""
    try:
        _check_shipped(shipped, task, name)
    except ZooError as exc:
        return f"cannot compare with the shipped zoo: {exc}"
    ours, theirs = built / WEIGHTS, shipped.folder / WEIGHTS
    if sha256_file(ours) == sha256_file(theirs):
        for item in built.iterdir():
            item.unlink()
        _copy_shipped(shipped, built)
        return (f"this machine reproduces the shipped zoo {name!r} bit for bit "
                f"(revision {_revision(shipped.manifest_sha256)})")
    return (f"this machine does not reproduce the shipped zoo {name!r} bit for bit: "
            f"{_difference(ours, theirs)}, revision {_revision(sha256_file(built / MANIFEST))} "
            f"instead of {_revision(shipped.manifest_sha256)}; the cache now holds this "
            f"machine's build; `wmplat zoo build {name} --shipped` puts the shipped zoo back")


def _difference(ours: Path, theirs: Path) -> str:
    a, b = load_file(ours), load_file(theirs)
    if {k: v.shape for k, v in a.items()} != {k: v.shape for k, v in b.items()}:
        return "the tensors' names or shapes differ"
    delta = max(float((a[k].double() - b[k].double()).abs().max()) for k in a)
    return f"max |Δw| = {delta:.3g}"


def _revision(manifest_sha256: str) -> str:
    return "local-" + manifest_sha256[:12]


def _check_shipped(shipped: ShippedZoo, task: Task, name: str) -> None:
    """The shipped zoo is the one the task pins, whole and valid for the task."""
    path = shipped.folder / MANIFEST
    if not path.is_file():
        raise ZooError(f"{path}: the zoo shipped with task {task.name!r} is missing; reinstall "
                       f"its package, or train the zoo here with `wmplat zoo build {name}`")
    digest = sha256_file(path)
    if digest != shipped.manifest_sha256:
        raise ZooError(f"{path}: sha256 {digest[:12]}... is not the {shipped.manifest_sha256[:12]}"
                       f"... that task {task.name!r} pins; the shipped zoo was modified or is "
                       "corrupt: reinstall its package")
    zoo = load_zoo(shipped.folder, task)
    if zoo.manifest.provenance.get("task_version") != task.version:
        raise ZooError(f"{path}: task_version {zoo.manifest.provenance.get('task_version')!r} "
                       f"is not task {task.name!r}'s version {task.version!r}; the shipped zoo "
                       "does not belong to this version of the task: reinstall its package")


def _copy_shipped(shipped: ShippedZoo, folder: Path) -> None:
    """Copy the shipped files into `folder` and check the copies' hashes."""
    shutil.copyfile(shipped.folder / MANIFEST, folder / MANIFEST)
    manifest = read_manifest(folder)
    for record in manifest.files:
        (folder / record.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shipped.folder / record.path, folder / record.path)
    if sha256_file(folder / MANIFEST) != shipped.manifest_sha256:
        raise ZooError(f"{shipped.folder}: changed while it was being copied; try again")
    verify_files(folder, manifest)


def _install(known: KnownZoo, task: Task, shipped: ShippedZoo) -> None:
    """Copy the shipped zoo into the cache; the caller holds the folder's lock."""
    status(f"installing the shipped zoo {known.name!r} (task {task.name}) into "
           f"{known.cache_path()} ...")
    _check_shipped(shipped, task, known.name)
    with atomic_folder(known.cache_path(), owned=is_wmplat_zoo) as tmp:
        _copy_shipped(shipped, tmp)
    status(f"installed zoo {known.name!r} (revision {_revision(shipped.manifest_sha256)})")


def _is_current(known: KnownZoo, plugins: Plugins) -> bool:
    folder = known.cache_path()
    if not (folder / MANIFEST).is_file():
        return False
    task_cls = plugins.datasets.get(known.entry.task).cls
    try:
        return read_manifest(folder).provenance.get("task_version") == task_cls.version
    except ZooError:
        return True  # let loading report what is wrong rather than silently rebuilding


def _ensure_cached(known: KnownZoo, plugins: Plugins) -> None:
    """Install or build a local zoo that is missing or out of date, once however many
    processes ask at the same time."""
    if _is_current(known, plugins):
        return
    with folder_lock(known.cache_path()):
        if _is_current(known, plugins):  # another process made it while we waited
            return
        shipped = _shipped(known, plugins)
        if shipped is None:
            _build(known, plugins)
        else:
            _install(known, plugins.datasets.get(known.entry.task).cls(), shipped)


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
    if known.entry.task == FILE_TASK:   # an imported zoo: its task is its own task file
        return load_zoo(known.cache_path())
    _ensure_cached(known, plugins)
    task = plugins.datasets.get(known.entry.task).cls()
    try:
        return load_zoo(known.cache_path(), task)
    except ZooError as exc:
        again = " --shipped` reinstalls" if _shipped(known, plugins) else "` rebuilds"
        raise ZooError(f"{exc}; `wmplat zoo build {known.name}{again} it") from None


def pull(known: KnownZoo, plugins: Plugins, revision: str | None = None) -> Zoo:
    """A Hub zoo at its pinned revision (or `revision`), from the cache or downloaded."""
    from ..hub.zoos import pull_zoo

    if known.entry.source != "hub":
        raise ZooError(f"zoo {known.name!r} is built locally, not pulled: "
                       f"`wmplat zoo build {known.name}`")
    entry = known.entry
    task = None if entry.task == FILE_TASK else _task(entry.task, plugins, f"zoo {known.name!r}")
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
    """A zoo folder: its task is built from the task file it carries, if it has one, else
    it is the registered task the manifest names."""
    manifest = read_manifest(path)
    if manifest.task_file is not None:
        return load_zoo(path)
    return load_zoo(path, _task(manifest.task, plugins, str(path / MANIFEST)))
