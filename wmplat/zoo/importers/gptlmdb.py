"""`--format gpt-lmdb`: the checkpoint data sets of Peebles et al.'s G.pt, as its
data_gen/train_mnist.py writes them and Gpt/data/dataset_lmdb.py reads them (wpeebles/G.pt).

SRC (e.g. G.pt's `checkpoint_datasets/mnist`) holds one folder per LMDB, named after its run
(G.pt names a run's folder by its seed, `{seed:06d}`), or after several runs joined by `_` (a
fused folder, whose runs.json is keyed by run). The LMDB maps `{run}/ep{EEE}_it{IIIII}.pt` to the
raw float32 bytes of the state dict, every entry flattened and concatenated in state-dict order,
and `{key}_arch` to each entry's element count (float32 too: G.pt's Database stores every value
as float32). `runs.json` holds `{"checkpoints": {key: {avg_train_loss, avg_train_err,
avg_test_loss, avg_test_err}}, "metadata": {...}}`; the errors are in percent. `DONE.txt` is
written last, after runs.json.

The values are bytes, read with numpy.frombuffer and checked for length: nothing is unpickled.
The LMDBs are opened read-only without a lock file, so a data set on read-only media imports.
"""

import json
import math
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from ...errors import ConfigError, ZooError
from .checkpoint import Checkpoint
from .statedict import number_runs

CHECKPOINT_KEY = re.compile(r"(?P<run>[^/]+)/ep(?P<epoch>\d+)_it(?P<iteration>\d+)\.pt")
ARCH = "_arch"
RUNS_JSON, DONE, DATA = "runs.json", "DONE.txt", "data.mdb"
LOSSES = ("avg_train_loss", "avg_train_err", "avg_test_loss", "avg_test_err")
# G.pt's Gpt/data/prepare_checkpoints.py deletes every run with a larger |w|, or a NaN or inf
DIVERGED = 10.0


def read_gpt_lmdb(src: Path, task, dropped: list[str]) -> Iterator[Checkpoint]:
    """The checkpoints of every finished run, run by run in name order, each in step order.
    The runs G.pt's own preparation deletes (DIVERGED) are left out and named in `dropped`."""
    lmdb = import_lmdb()
    folders = finished_folders(src)
    numbers = number_runs([run for _, runs in folders for run in runs])
    layout = [(name, tuple(t.shape)) for name, t in task.module.state_dict().items()]
    kept = {name for name, _ in task.param_spec}
    for folder, runs in folders:
        listed = read_runs_json(folder, runs)
        if not (folder / DATA).is_file():
            raise ZooError(f"{folder}: no {DATA}; a G.pt run folder is an LMDB")
        try:
            env = lmdb.open(str(folder), readonly=True, lock=False, readahead=False)
        except lmdb.Error as exc:
            raise ZooError(f"{folder}: cannot open its LMDB read-only ({exc})") from None
        try:
            with env.begin() as txn:
                check_keys(folder, listed, txn)
                for run in runs:
                    checkpoints = [read_checkpoint(folder, key, txn, layout, kept)
                                   for key in listed[run]]
                    if diverged(checkpoints):
                        dropped.append(run)
                        warnings.warn(f"{folder}: run {run} has weights beyond |w| <= "
                                      f"{DIVERGED:g} or NaN or inf, left out as G.pt's "
                                      "prepare_checkpoints.py leaves it out", stacklevel=2)
                        continue
                    yield from run_checkpoints(folder, run, numbers[run], listed[run],
                                               checkpoints)
        except lmdb.Error as exc:
            raise ZooError(f"{folder}: its LMDB is unreadable ({type(exc).__name__}: "
                           f"{exc})") from None
        finally:
            env.close()


def import_lmdb():
    try:
        import lmdb
    except ImportError:
        raise ConfigError("--format gpt-lmdb needs the lmdb package: "
                          "pip install 'wmplat[lmdb]'") from None
    return lmdb


def finished_folders(src: Path) -> list[tuple[Path, list[str]]]:
    """Each folder with DONE.txt and the runs its name lists; the others are skipped with a
    warning (runs still being written: runs.json appears only when a run ends)."""
    if not src.is_dir():
        raise ConfigError(f"{src}: not a folder of G.pt run folders")
    folders, seen = [], {}
    for folder in sorted(p for p in src.iterdir() if p.is_dir()):
        if not (folder / DONE).is_file():
            warnings.warn(f"{folder}: no {DONE}, skipped (a run still being written?)",
                          stacklevel=2)
            continue
        runs = folder.name.split("_")
        for run in runs:
            if run in seen:
                raise ZooError(f"{folder}: run {run} is also in {seen[run]}; keep one copy")
            seen[run] = folder
        folders.append((folder, runs))
    if not folders:
        raise ConfigError(f"{src}: no finished run folder (a folder holding an LMDB, "
                          f"{RUNS_JSON} and {DONE}); is it a G.pt checkpoint data set such as "
                          "checkpoint_datasets/mnist?")
    return folders


def read_runs_json(folder: Path, runs: list[str]) -> dict[str, dict[str, dict[str, float]]]:
    """{run: {checkpoint key: the four losses}}, each run's keys in step order."""
    path = folder / RUNS_JSON
    if not path.is_file():
        raise ZooError(f"{path}: missing; a finished G.pt run folder holds {RUNS_JSON} "
                       "with the losses of its checkpoints")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ZooError(f"{path}: not readable JSON ({exc})") from None
    listed = {}
    for run in runs:
        entry = data.get(run, data) if isinstance(data, dict) else None
        if not isinstance(entry, dict) or not isinstance(entry.get("checkpoints"), dict):
            raise ZooError(f"{path}: no checkpoints of run {run} (expected "
                           '{"checkpoints": {key: losses}}, or that under the run\'s name)')
        listed[run] = {key: checked_losses(path, key, run, losses) for key, losses
                       in sorted(entry["checkpoints"].items(), key=lambda kv: position(kv[0]))}
    return listed


def position(key: str) -> tuple[int, int]:
    match = CHECKPOINT_KEY.fullmatch(key)
    return (int(match["epoch"]), int(match["iteration"])) if match else (-1, -1)


def checked_losses(path: Path, key: str, run: str, losses) -> dict[str, float]:
    match = CHECKPOINT_KEY.fullmatch(key)
    if not match or match["run"] != run:
        raise ZooError(f"{path}: checkpoint key {key!r} is not {run}/ep<EEE>_it<IIIII>.pt")
    if not isinstance(losses, dict):
        raise ZooError(f"{path}: checkpoint {key!r} holds no losses")
    for name in LOSSES:
        value = losses.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ZooError(f"{path}: checkpoint {key!r} has no number {name} (it needs "
                           f"{', '.join(LOSSES)})")
    return {name: float(losses[name]) for name in LOSSES}


def check_keys(folder: Path, listed: dict[str, dict], txn) -> None:
    """The LMDB holds exactly the checkpoints runs.json lists, each with its _arch."""
    stored = {key.decode("utf-8", "replace") for key in txn.cursor().iternext(values=False)}
    wanted = {k for keys in listed.values() for key in keys for k in (key, key + ARCH)}
    if missing := sorted(wanted - stored):
        raise ZooError(f"{folder}: {RUNS_JSON} lists {missing[0]!r}, which its LMDB lacks "
                       f"({len(missing)} missing); the run folder is incomplete")
    if extra := sorted(stored - wanted):
        raise ZooError(f"{folder}: its LMDB holds {extra[0]!r}, which {RUNS_JSON} does not "
                       f"list ({len(extra)} unlisted); its losses are unknown")


def read_checkpoint(folder: Path, key: str, txn, layout: list[tuple[str, tuple[int, ...]]],
                    kept: set[str]) -> dict[str, torch.Tensor]:
    """The checkpoint's state dict, cut by its _arch counts, without integer buffers."""
    counts = element_counts(folder, key, txn.get((key + ARCH).encode()))
    expected = [math.prod(shape) for _, shape in layout]
    if counts != expected:
        shapes = ", ".join(f"{name} {list(shape)}" for name, shape in layout)
        raise ZooError(f"{folder}: {key + ARCH} gives element counts {counts}, the task's state "
                       f"dict has {expected} ({shapes}); fix the task file's architecture")
    value = txn.get(key.encode())
    if len(value) != 4 * sum(counts):
        raise ZooError(f"{folder}: {key} holds {len(value)} bytes, its element counts add up "
                       f"to {sum(counts)} float32 values ({4 * sum(counts)} bytes); the LMDB "
                       "is truncated or holds something else")
    flat = torch.from_numpy(np.frombuffer(value, dtype="<f4").copy())
    params, start = {}, 0
    for (name, shape), count in zip(layout, counts, strict=True):
        if name in kept:
            params[name] = flat[start:start + count].reshape(shape)
        start += count
    return params


def element_counts(folder: Path, key: str, value: bytes | None) -> list[int]:
    if value is None or len(value) % 4:
        return []       # refused by the caller against the task's counts
    counts = np.frombuffer(value, dtype="<f4")
    if not (np.isfinite(counts).all() and (counts == np.round(counts)).all()
            and (counts >= 0).all()):
        raise ZooError(f"{folder}: {key + ARCH} does not hold element counts (float32 whole "
                       "numbers, as G.pt stores them)")
    return [int(c) for c in counts]


def diverged(checkpoints: list[dict[str, torch.Tensor]]) -> bool:
    return any(not torch.isfinite(t).all() or bool((t.abs() > DIVERGED).any())
               for params in checkpoints for t in params.values())


def run_checkpoints(folder: Path, run: str, number: int, listed: dict[str, dict[str, float]],
                    checkpoints: list[dict[str, torch.Tensor]]) -> Iterator[Checkpoint]:
    """Step = epoch × E + iteration, E the run's largest iteration: G.pt's key counts
    iterations within each epoch from 1 and always saves the last one, epoch_iters."""
    per_epoch = max(position(key)[1] for key in listed)
    for (key, losses), params in zip(listed.items(), checkpoints, strict=True):
        epoch, iteration = position(key)
        for name, value in losses.items():
            if not math.isfinite(value):
                raise ZooError(f"{folder / RUNS_JSON}: checkpoint {key!r} records {name} "
                               f"{value}; a zoo records finite values only")
        yield Checkpoint(source=f"{folder}[{key}]", run=number, step=epoch * per_epoch + iteration,
                         seed=number, params=params, metadata=losses,
                         recorded_quality=1 - losses["avg_test_err"] / 100)
