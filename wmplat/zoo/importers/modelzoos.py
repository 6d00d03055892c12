"""`--format modelzoos`: the layout of Schürholt et al.'s Model Zoos (ModelZooDataset, also read
by SANE). One Ray Tune trial folder per run, holding `checkpoint_<e>` (or `checkpoint_<e:06d>`)
subfolders with a file `checkpoints` (a state dict whose keys start `module_list.`, stripped
here) and `optimizer` (never opened), and `result.json`: JSON lines, one per
`training_iteration`, with `test_acc` and a `config` dict holding `seed`.

A checkpoint's step is its `e`, matched to the result line of that `training_iteration` for
its recorded quality (`checkpoint_000000`, the initialisation, has none). Trial folders are
numbered 0, 1, ... in sorted order. Files at the zoo's root (`dataset.pt`, a pickle of the
training data; `config.json`; `readme.md`) are never opened.
"""

import re
import warnings
from collections.abc import Iterator
from pathlib import Path

from ...errors import ConfigError, ZooError
from .checkpoint import Checkpoint
from .jsonlines import json_objects
from .statedict import load_state, parse_rename

CHECKPOINT_DIR = re.compile(r"checkpoint_(\d+)")
STATE_FILE = "checkpoints"
RESULTS = "result.json"
PREFIX = "module_list."


def read_modelzoos(src: Path, rename: list[str]) -> Iterator[Checkpoint]:
    renames = [parse_rename(item) for item in rename]
    trials = _finished_trials(src)
    for run, (trial, checkpoints) in enumerate(trials):
        results = read_results(trial / RESULTS)
        seed = _seed(results, trial, run)
        for step, folder in checkpoints:
            state, _ = load_state(folder / STATE_FILE)
            params = {}
            for key, value in state.items():
                if key.endswith("num_batches_tracked"):
                    continue
                key = key.removeprefix(PREFIX)
                for regex, repl in renames:
                    key = regex.sub(repl, key)
                params[key] = value
            line = results.get(step, {})
            recorded = line.get("test_acc")
            yield Checkpoint(source=str(folder / STATE_FILE), run=run, step=step, seed=seed,
                             params=params, recorded_quality=None if recorded is None
                             else float(recorded))


def _finished_trials(src: Path) -> list[tuple[Path, list[tuple[int, Path]]]]:
    """Trial folders with checkpoints and results, each with its (step, folder) checkpoints;
    the others are skipped with a warning naming them."""
    if not src.is_dir():
        raise ConfigError(f"{src}: not a folder of Ray Tune trial folders")
    trials = []
    for trial in sorted(p for p in src.iterdir() if p.is_dir()):
        checkpoints = sorted((int(m.group(1)), p) for p in trial.iterdir()
                             if p.is_dir() and (m := CHECKPOINT_DIR.fullmatch(p.name))
                             and (p / STATE_FILE).is_file())
        if not checkpoints or not (trial / RESULTS).is_file():
            missing = "checkpoints" if not checkpoints else RESULTS
            warnings.warn(f"{trial}: no {missing}, skipped (an unfinished trial?)",
                          stacklevel=2)
            continue
        trials.append((trial, checkpoints))
    if not trials:
        raise ConfigError(f"{src}: no trial folder with checkpoint_<e>/{STATE_FILE} and "
                          f"{RESULTS}; is it a Model Zoos folder?")
    return trials


def read_results(path: Path) -> dict[int, dict]:
    """result.json's lines by training_iteration."""
    lines = {}
    for number, line in json_objects(path.read_text(encoding="utf-8"), str(path), ZooError):
        if not isinstance(line.get("training_iteration"), int):
            raise ZooError(f"{path}:{number}: a result line needs an integer "
                           "training_iteration")
        lines[line["training_iteration"]] = line
    return lines


def _seed(results: dict[int, dict], trial: Path, run: int) -> int:
    for line in results.values():
        config = line.get("config")
        if isinstance(config, dict) and isinstance(config.get("seed"), int):
            return config["seed"]
    return run
