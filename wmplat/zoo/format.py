"""A zoo on disk: `manifest.json` + `weights.safetensors`, verified on load, never unpickled.

`weights.safetensors` holds one tensor per parameter name, stacked [num_models, *shape], in the
order of the manifest's `models`. The manifest records the sha256 of each file. A zoo whose task
is described by a task file carries a copy of it (`task.yaml`, the manifest's `task_file`) and
of its data file, hashed like the weights, and its task is built from them (docs/byoz.md).
"""

import hashlib
import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from .. import __version__
from ..engine.atomic import write_text_atomic
from ..errors import ConfigError, ZooError
from ..evaluation.heldout_copies import check_independent_splits
from ..schema import ModelRecord, ZooManifest, parse_model, parse_versioned
from ..task import BuiltZoo, Task
from .params import ParamSpec, flatten, normalize_spec, num_params, unflatten
from .train_view import TrainZoo

MANIFEST = "manifest.json"
WEIGHTS = "weights.safetensors"
TASK_FILE = "task.yaml"      # where a zoo keeps the copy of its task file
RESERVED = (MANIFEST, WEIGHTS, TASK_FILE, "README.md")   # names a task's data file cannot take
# The largest |weight| a zoo or a method's sample may hold: far beyond any trained network, and
# small enough that squared distances over millions of parameters stay finite in float32.
MAX_WEIGHT = 1e6


def independent_units(models: list[ModelRecord]) -> list[int]:
    """What a reference row must never compare with itself: the run of each model, or, in a
    split of a single run (p-diff trains on the iterates of one run), each checkpoint on its
    own, numbered -1, -2, ... so that no unit id can equal a run id."""
    if len({m.run for m in models}) > 1:
        return [m.run for m in models]
    return [-1 - i for i in range(len(models))]


class Zoo:
    """Checkpoints of one task's architecture, split by training run into train and heldout.

    The runner's and the metrics' view, both splits visible. Methods are handed
    `without_heldout()`, a `TrainZoo` that holds the train split only.
    """

    def __init__(self, manifest: ZooManifest, weights: torch.Tensor, task: Task,
                 revision: str | None, folder: Path | None = None,
                 within: Path | None = None):
        self.manifest = manifest
        self.folder = folder                  # where it was loaded from
        self.within = within                  # where its files may lead (None: the folder)
        self.task = task
        self.revision = revision
        self._weights = weights
        self._spec = normalize_spec((p.name, p.shape) for p in manifest.param_spec)
        self._train = [i for i, m in enumerate(manifest.models) if m.split == "train"]
        self._heldout = [i for i, m in enumerate(manifest.models) if m.split == "heldout"]

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def param_spec(self) -> ParamSpec:
        return list(self._spec)

    @property
    def num_params(self) -> int:
        return self._weights.shape[1]

    def flatten(self, params: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return flatten(params, self._spec)

    def unflatten(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        return unflatten(flat, self._spec)

    def train_weights(self) -> torch.Tensor:
        """[num_train_models, num_params] float32 (a copy: methods may modify it)."""
        return self._weights[self._train].clone()

    def train_models(self) -> list[ModelRecord]:
        return [self.manifest.models[i] for i in self._train]

    def heldout_weights(self) -> torch.Tensor:
        return self._weights[self._heldout].clone()

    def heldout_models(self) -> list[ModelRecord]:
        return [self.manifest.models[i] for i in self._heldout]

    def without_heldout(self) -> TrainZoo:
        """What a method is given: copies of the train split, and a task that only judges."""
        return TrainZoo(self.name, self._weights[self._train], self.train_models(),
                        self._spec, self.task, self.manifest.provenance)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(folder: Path) -> ZooManifest:
    path = folder / MANIFEST
    if not path.is_file():
        raise ZooError(f"{folder}: no {MANIFEST}; not a wmplat zoo folder")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ZooError(f"{path}: not valid JSON ({exc})") from None
    return parse_versioned(ZooManifest, data, str(path), ZooError)


def load_zoo(folder: Path, task: Task | None = None, revision: str | None = None,
             within: Path | None = None) -> Zoo:
    """Read and verify a zoo folder: schema, file hashes, tensor names, shapes and values.
    Its files must lead (through any links) inside `within`, by default the folder itself.
    Without `task`, the task is the one the zoo's own task file describes."""
    manifest = read_manifest(folder)
    verify_files(folder, manifest, within)
    if task is None:
        task = file_task(folder, manifest, within)
    if manifest.task != task.name:
        raise ZooError(f"{folder / MANIFEST}: task is {manifest.task!r}, expected {task.name!r}")
    weights = _read_weights(folder / WEIGHTS, manifest, task)
    units = {split: independent_units([m for m in manifest.models if m.split == split])
             for split in ("heldout", "train")}
    check_independent_splits(manifest, weights, units["heldout"], units["train"], str(folder))
    if revision is None:
        revision = "local-" + sha256_file(folder / MANIFEST)[:12]
    return Zoo(manifest, weights, task, revision, folder=folder, within=within)


def file_task(folder: Path, manifest: ZooManifest, within: Path | None = None) -> Task:
    """The task of a zoo that carries its task file, built from the verified copy in `folder`;
    its data file must be one of the zoo's hashed files too (which lead inside `within`)."""
    from ..tasks.file import load_task_file

    if manifest.task_file is None:
        raise ZooError(f"{folder / MANIFEST}: the zoo has no task_file, so its task "
                       f"{manifest.task!r} must be installed: give it by name (registry "
                       "entries use task: the task's name, not module)")
    try:
        task = load_task_file(folder / manifest.task_file, load_data=False,
                              within=within or folder)
    except ConfigError as exc:
        raise ZooError(str(exc)) from None
    data = task.spec.data.file
    if data is not None:
        wanted = (Path(manifest.task_file).parent / data).as_posix()
        if wanted not in {r.path for r in manifest.files}:
            raise ZooError(f"{folder / MANIFEST}: the task file's data file {wanted!r} is not "
                           "listed in files; a zoo's files are all hashed in its manifest")
    return task


def verify_files(folder: Path, manifest: ZooManifest, within: Path | None = None) -> None:
    """The folder's own integrity, whatever task reads it: every listed file is inside
    `within` (by default the folder), there with its sha256, and the weights file is
    safetensors."""
    _check_inside(folder, [MANIFEST, *(r.path for r in manifest.files)], within or folder)
    for record in manifest.files:
        path = folder / record.path
        if not path.is_file():
            raise ZooError(f"{path}: listed in {MANIFEST} but missing")
        if sha256_file(path) != record.sha256:
            raise ZooError(f"{path}: sha256 does not match {MANIFEST}; the file is corrupt "
                           "or was modified")
    if WEIGHTS not in {r.path for r in manifest.files}:
        raise ZooError(f"{folder / MANIFEST}: files must list {WEIGHTS}")
    try:
        with safe_open(folder / WEIGHTS, "pt") as weights:
            weights.keys()
    except (SafetensorError, OSError, ValueError) as exc:
        raise ZooError(f"{folder / WEIGHTS}: not a readable safetensors file ({exc})") from None


def _check_inside(folder: Path, paths: list[str], within: Path) -> None:
    """The manifest's paths are relative names (schema.FileRecord); a link among them could
    still point anywhere, and what is listed is hashed and pushed."""
    root = within.resolve()
    for path in paths:
        target = (folder / path).resolve()
        if not target.is_relative_to(root):
            raise ZooError(f"{folder / path}: leads outside the zoo folder (to {target}); a "
                           "zoo's files must be in its folder, not links to elsewhere")


def _read_weights(path: Path, manifest: ZooManifest, task: Task) -> torch.Tensor:
    try:
        tensors = load_file(path)
    except (SafetensorError, OSError, ValueError) as exc:
        raise ZooError(f"{path}: not a readable safetensors file ({exc})") from None
    spec = normalize_spec((p.name, p.shape) for p in manifest.param_spec)
    if spec != normalize_spec(task.param_spec):
        raise ZooError(f"{path.parent / MANIFEST}: param_spec {spec} does not match the "
                       f"architecture of task {task.name!r}: {task.param_spec}")
    expected = {name for name, _ in spec}
    if set(tensors) != expected:
        raise ZooError(f"{path}: tensors {sorted(tensors)} do not match param_spec "
                       f"{sorted(expected)}")
    n = len(manifest.models)
    for name, shape in spec:
        if tuple(tensors[name].shape) != (n, *shape):
            raise ZooError(f"{path}: tensor {name!r} has shape {list(tensors[name].shape)}, "
                           f"expected {[n, *shape]} ({n} models in {MANIFEST})")
        _check_weights(path, name, tensors[name])
    return flatten(tensors, spec)


def _check_weights(path: Path, name: str, tensor: torch.Tensor) -> None:
    """Float32 (nothing is converted: a zoo's numbers are what its file says) and within
    MAX_WEIGHT."""
    if tensor.dtype != torch.float32:
        dtype = str(tensor.dtype).removeprefix("torch.")
        raise ZooError(f"{path}: tensor {name!r} has dtype {dtype}; zoo weights must be "
                       f"float32: save them as float32 and record the new sha256 in {MANIFEST}")
    if not torch.isfinite(tensor).all():
        raise ZooError(f"{path}: tensor {name!r} contains NaN or infinite weights")
    beyond = int((tensor.abs() > MAX_WEIGHT).sum())
    if beyond:
        largest = float(tensor.abs().max())
        raise ZooError(f"{path}: tensor {name!r} has {beyond} weights beyond the limit "
                       f"|w| <= {MAX_WEIGHT:.0e} (largest |w| {largest:.0e}); trained networks "
                       "have far smaller weights: the file is corrupt or holds something else")


def write_zoo(folder: Path, name: str, task: Task, built: BuiltZoo,
              extra_provenance: dict[str, Any] | None = None) -> None:
    """Write `built` as a zoo folder (the caller makes the folder appear atomically). For a
    task built from a task file (`wmplat.tasks.file.FileTask`), the folder also gets copies of
    the task file and its data file, and the manifest names the task file."""
    spec = normalize_spec(task.param_spec)
    if built.weights.shape != (len(built.models), num_params(spec)):
        raise ZooError(f"task {task.name!r} built weights {list(built.weights.shape)} for "
                       f"{len(built.models)} models of {num_params(spec)} parameters")
    task_files = _copy_task_files(folder, task)
    stacked = {k: v.contiguous() for k, v in unflatten(built.weights.float(), spec).items()}
    save_file(stacked, folder / WEIGHTS)
    files = [WEIGHTS, *task_files]
    manifest = parse_model(ZooManifest, {
        "schema_version": 1, "name": name, "task": task.name,
        "architecture": task.architecture,
        "param_spec": [{"name": n, "shape": list(s)} for n, s in spec],
        "models": built.models,
        "files": [{"path": path, "sha256": sha256_file(folder / path)} for path in files],
        "license": task.license,
        "provenance": {"built_by": f"wmplat {__version__}", **built.provenance,
                       **(extra_provenance or {})},
        **({"task_file": TASK_FILE} if task_files else {}),
    }, f"zoo {name!r} built by task {task.name!r}", ZooError)
    # a zoo of a registered task keeps the manifest of earlier versions, byte for byte
    write_text_atomic(folder / MANIFEST, manifest_json(manifest))


def manifest_json(manifest: ZooManifest) -> str:
    """The manifest as written: a zoo of a registered task whose models record no metadata
    keeps the bytes of earlier versions (no `task_file`, no empty `metadata`)."""
    exclude: dict[str, Any] = {}
    if manifest.task_file is None:
        exclude["task_file"] = True
    if empty := {i: {"metadata"} for i, m in enumerate(manifest.models) if not m.metadata}:
        exclude["models"] = empty
    return manifest.model_dump_json(indent=2, exclude=exclude or None) + "\n"


def _copy_task_files(folder: Path, task: Task) -> list[str]:
    """For a file task, copy its task file to TASK_FILE and its data file (if it has one) to
    the same path relative to it, as the task file names it; the paths copied."""
    from ..tasks.file import FileTask

    if not isinstance(task, FileTask):
        return []
    copies = [(task.path, TASK_FILE)]
    data = task.spec.data.file
    if data is not None:
        if data in RESERVED:
            raise ZooError(f"{task.path}: data.file {data!r} would overwrite the zoo's own "
                           f"{data}; rename the data file")
        copies.append((task.path.parent / data, data))
    for source, path in copies:
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, folder / path)
    return [path for _, path in copies]
