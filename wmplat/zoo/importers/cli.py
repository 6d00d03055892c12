"""What `wmplat zoo import` does with its options."""

from collections.abc import Iterator
from pathlib import Path

from ...errors import ConfigError
from ...tasks.file import load_task_file
from .checkpoint import Checkpoint
from .gptlmdb import read_gpt_lmdb
from .modelzoos import read_modelzoos
from .smallcnnzoo import read_smallcnnzoo
from .split import parse_runs
from .statedict import read_statedict
from .write import import_zoo


def run_import(src: Path, fmt: str, task_path: Path, name: str, heldout: float | None,
               heldout_runs: str | None, pattern: str | None, metadata: Path | None,
               rename: list[str], seed: int, min_step: int = 0,
               heldout_from: Path | None = None) -> Path:
    if not task_path.is_file():
        raise ConfigError(f"--task {task_path}: no such file")
    task = load_task_file(task_path)
    given = parse_runs(heldout_runs)
    if sum(x is not None for x in (heldout, given, heldout_from)) != 1:
        raise ConfigError("give exactly one of --heldout FRACTION, --heldout-runs LIST and "
                          "--heldout-from DIR")
    provenance = {"imported_from": str(src.resolve()), "format": fmt}
    checkpoints = read_source(src, fmt, task, pattern, metadata, rename, provenance)
    if heldout_from is not None:
        if not heldout_from.is_dir():
            raise ConfigError(f"--heldout-from {heldout_from}: no such folder")
        provenance["heldout_from"] = str(heldout_from.resolve())
        checkpoints = with_heldout(checkpoints, lambda: read_source(
            heldout_from, fmt, task, pattern, metadata, rename, {}))
    if min_step:
        provenance["min_step"] = min_step
        checkpoints = (c for c in checkpoints if c.step >= min_step)
    return import_zoo(checkpoints, task, name, heldout, given, seed, provenance)


def with_heldout(train: Iterator[Checkpoint], read_heldout) -> Iterator[Checkpoint]:
    """The source's checkpoints, then those of --heldout-from, all heldout, their runs numbered
    after the source's (run r there becomes run R + 1 + r, R the source's largest run)."""
    runs = set()
    for ckpt in train:
        runs.add(ckpt.run)
        yield ckpt
    offset = max(runs, default=-1) + 1
    for ckpt in read_heldout():
        ckpt.run += offset
        ckpt.heldout = True
        yield ckpt


def read_source(src: Path, fmt: str, task, pattern: str | None, metadata: Path | None,
                rename: list[str], provenance: dict) -> Iterator[Checkpoint]:
    """The checkpoints of `src` in format `fmt`; records the options in `provenance`."""
    if fmt == "statedict":
        checkpoints = read_statedict(src, pattern, metadata, rename)
        provenance.update({"pattern": pattern, "rename": rename,
                           "metadata": str(metadata) if metadata else None})
    elif fmt == "modelzoos":
        for option, value in (("--pattern", pattern), ("--metadata", metadata)):
            if value is not None:
                raise ConfigError(f"{option} is for --format statedict; a modelzoos folder "
                                  "says its runs, steps and seeds itself")
        checkpoints = read_modelzoos(src, rename)
        provenance.update({"rename": rename})
    elif fmt == "smallcnnzoo":
        for option, value in (("--pattern", pattern), ("--metadata", metadata),
                              ("--rename", rename or None)):
            if value is not None:
                raise ConfigError(f"{option} is not for --format smallcnnzoo: its layout.csv "
                                  "lists the variables in the task's parameter order")
        checkpoints = read_smallcnnzoo(src, task.param_spec)
    elif fmt == "gpt-lmdb":
        for option, value in (("--pattern", pattern), ("--metadata", metadata),
                              ("--rename", rename or None)):
            if value is not None:
                raise ConfigError(f"{option} is not for --format gpt-lmdb: each checkpoint's "
                                  "_arch counts cut it into the task's state dict, in order")
        # filled as the checkpoints are read, before the zoo's provenance is written
        provenance["dropped_runs"] = dropped = []
        checkpoints = read_gpt_lmdb(src, task, dropped)
    else:
        raise ConfigError(f"--format {fmt!r} is not known")
    return iter(checkpoints)
