"""What `wmplat zoo import` does with its options."""

from pathlib import Path

from ...errors import ConfigError
from ...tasks.file import load_task_file
from .modelzoos import read_modelzoos
from .smallcnnzoo import read_smallcnnzoo
from .split import parse_runs
from .statedict import read_statedict
from .write import import_zoo


def run_import(src: Path, fmt: str, task_path: Path, name: str, heldout: float | None,
               heldout_runs: str | None, pattern: str | None, metadata: Path | None,
               rename: list[str], seed: int, min_step: int = 0) -> Path:
    if not task_path.is_file():
        raise ConfigError(f"--task {task_path}: no such file")
    task = load_task_file(task_path)
    given = parse_runs(heldout_runs)
    if (heldout is None) == (given is None):
        raise ConfigError("give exactly one of --heldout FRACTION and --heldout-runs LIST")
    provenance = {"imported_from": str(src.resolve()), "format": fmt}
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
    else:
        raise ConfigError(f"--format {fmt!r} is not known")
    if min_step:
        provenance["min_step"] = min_step
        checkpoints = (c for c in checkpoints if c.step >= min_step)
    return import_zoo(checkpoints, task, name, heldout, given, seed, provenance)
