"""Checked checkpoints, recomputed qualities and a seeded split, written as a zoo under
$WMPLAT_HOME/zoos/NAME whole or not at all."""

import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from ...engine.atomic import atomic_folder, folder_lock
from ...engine.progress import status
from ...errors import ZooError
from ...evaluation.statistics import MIN_HELDOUT_RUNS
from ...names import check_name
from ...task import BuiltZoo
from ...tasks.file import FileTask
from ..format import write_zoo
from ..home import home
from .checkpoint import Checkpoint
from .checks import check_params
from .split import heldout_runs

WORST_SHOWN = 3
# The noise baseline's two levels, as fractions of the zoo's per-parameter spread: well inside
# the cloud of checkpoints (a near-copy), and as far as checkpoints lie from one another.
NOISE_LEVELS = (0.1, 1.0)


def import_zoo(checkpoints: Iterable[Checkpoint], task: FileTask, name: str,
               heldout: float | None, heldout_given: list[int] | None, seed: int,
               provenance: dict[str, Any]) -> Path:
    """Check every checkpoint, recompute its quality, split by run and write the zoo."""
    check_name("zoo", name, error=ZooError)
    target = home() / "zoos" / name
    _check_free(name, target)
    rows, found = [], []
    for ckpt in checkpoints:
        rows.append(check_params(ckpt.source, ckpt.params, task.param_spec))
        ckpt.params = {}       # the row is all that is kept
        found.append(ckpt)
    if not found:
        raise ZooError("no checkpoints left to import (is --min-step beyond every step?)")
    _check_unique(found)
    runs = sorted({c.run for c in found})
    chosen = given_heldout(found) or heldout_runs(runs, heldout, heldout_given, seed)
    weights = torch.stack(rows)
    status(f"recomputing the quality of {len(found)} checkpoints ...")
    quality = task.quality(task.behaviour(weights)).tolist()
    mismatch = compare_quality(found, quality, len(task.test_data()[1]))
    models = [{"id": f"run{c.run}-step{c.step}", "run": c.run, "step": c.step,
               "split": "heldout" if c.run in chosen else "train", "seed": c.seed,
               "quality": q, "metadata": c.metadata} for c, q in zip(found, quality, strict=True)]
    split = {"seed": seed, "heldout_runs": chosen,
             **({"fraction": heldout} if heldout is not None else {}),
             **({"heldout_from": provenance["heldout_from"]} if "heldout_from" in provenance
                else {})}
    train = weights[[m["split"] == "train" for m in models]]
    built = BuiltZoo(weights, models, {**provenance, "split": split, "quality_check": mismatch,
                                       "baseline_settings": default_baselines(train)})
    with folder_lock(target):
        _check_free(name, target)
        with atomic_folder(target, owned=_replaceable) as tmp:
            write_zoo(tmp, name, task, built)
    status(f"imported zoo {name!r}: {len(found)} checkpoints of {len(runs)} runs, "
           f"{len(chosen)} runs held out{f' (drawn, seed {seed})' if heldout else ''}; "
           f"{_checked(mismatch)}")
    warn_few_heldout(len(chosen), name)
    return target


def given_heldout(found: list[Checkpoint]) -> list[int]:
    """The runs of --heldout-from's checkpoints; the source must keep one to train on."""
    chosen = sorted({c.run for c in found if c.heldout})
    if chosen and len(chosen) == len({c.run for c in found}):
        raise ZooError("no checkpoint of the source is left to train on (--min-step beyond its "
                       "steps?); the train runs come from SRC, the heldout runs from "
                       "--heldout-from")
    if not chosen and any(c.heldout for c in found):
        raise ZooError("no checkpoint of --heldout-from is left (--min-step beyond its steps?)")
    return chosen


def _checked(mismatch: dict[str, Any]) -> str:
    if not mismatch["compared"]:
        return "the source records no quality to compare with"
    return (f"recomputed quality vs recorded for {mismatch['compared']}: largest difference "
            f"{mismatch['max_difference']:.4f}, {mismatch['beyond_one_example']} beyond one "
            "test example")


def default_baselines(train: torch.Tensor) -> dict[str, list[dict[str, float]]]:
    """The noise baseline at NOISE_LEVELS times the training checkpoints' typical spread: the
    median over parameters of each parameter's standard deviation across checkpoints."""
    if len(train) < 2:
        return {}
    spread = float(train.double().std(dim=0).median())
    return {"noise": [{"sigma": float(f"{level * spread:.3g}")} for level in NOISE_LEVELS]}


def _replaceable(folder: Path) -> bool:
    from ..catalogue import is_imported_zoo
    return is_imported_zoo(folder)


def _check_free(name: str, target: Path) -> None:
    """An import replaces an earlier import of that name, never another zoo."""
    from ...plugins import load_plugins
    from ..catalogue import is_imported_zoo, known_zoos

    known = known_zoos(load_plugins())
    if name in known and not (known[name].entry.source == "local" and
                              known[name].entry.task == "module"):
        raise ZooError(f"zoo name {name!r} is taken ({known[name].entry.source} zoo of task "
                       f"{known[name].entry.task!r}); choose another --name")
    if target.exists() and not is_imported_zoo(target):
        raise ZooError(f"{target} exists and is not an imported zoo; choose another --name")


def _check_unique(found: list[Checkpoint]) -> None:
    seen: dict[tuple[int, int], str] = {}
    for c in found:
        if (c.run, c.step) in seen:
            raise ZooError(f"{c.source} and {seen[c.run, c.step]} are both run {c.run} at step "
                           f"{c.step}; give --pattern groups that tell checkpoints apart")
        seen[c.run, c.step] = c.source


def compare_quality(found: list[Checkpoint], quality: list[float], examples: int
                    ) -> dict[str, Any]:
    """Where the source recorded a quality: the largest difference from the recomputed one,
    and a warning with the worst checkpoints when it exceeds one test example's worth."""
    pairs = [(abs(q - c.recorded_quality), c, q) for c, q in zip(found, quality, strict=True)
             if c.recorded_quality is not None]
    if not pairs:
        return {"compared": 0}
    pairs.sort(key=lambda p: -p[0])
    tolerance = 1 / examples
    beyond = [p for p in pairs if p[0] > tolerance + 1e-9]
    if beyond:
        worst = "; ".join(f"{c.source}: recorded {c.recorded_quality:.4f}, recomputed {q:.4f}"
                          for _, c, q in beyond[:WORST_SHOWN])
        warnings.warn(f"{len(beyond)} of {len(pairs)} checkpoints have a recomputed quality "
                      f"more than one test example's worth (1/{examples}) from the recorded "
                      f"one: the task file's data, preprocessing or architecture is not what "
                      f"they were trained with; worst: {worst}", stacklevel=2)
    return {"compared": len(pairs), "beyond_one_example": len(beyond),
            "max_difference": pairs[0][0]}


def warn_few_heldout(runs: int, name: str) -> None:
    if runs < MIN_HELDOUT_RUNS:
        warnings.warn(f"zoo {name!r} has {runs} heldout runs: with m runs the smallest "
                      f"p-value is 1/(m+1), so below {MIN_HELDOUT_RUNS} no sample can be "
                      "flagged and evaluations read no-power instead of novel; hold out more "
                      "runs (docs/metrics.md)", stacklevel=2)
