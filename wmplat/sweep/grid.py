"""A sweep's grid: which cells (one `wmplat evaluate` row each) a sweep computes.

Per zoo: the two references (`fresh`, the null every other cell is judged against, and
`train`), then for each seed every baseline at the task's settings and every method asked for.
A method that is a baseline at a baseline's setting is that baseline's cell, not a second one.
"""

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..evaluation.defaults import MAX_SEED
from ..evaluation.runner import REFERENCE, TRAIN_REFERENCE, Job, baseline_jobs, validate_config
from ..evaluation.store import config_hash
from ..plugins import Plugins
from ..zoo.format import Zoo
from .zoos import ZooSource

SEEDS = re.compile(r"^\d+(-\d+)?$")
MAX_CELLS = 100_000


def parse_seeds(text: str) -> list[int]:
    """`0-4`, `0,3,7` or `0-2,10`: the seeds in the order given, each once."""
    seeds: dict[int, None] = {}         # ordered, each seed once
    for part in text.split(","):
        part = part.strip()
        if not part:
            raise ConfigError(f"--seeds {text!r}: an empty seed; separate seeds by single "
                              "commas, e.g. 0-4, 0,3,7 or 0-2,10")
        if not SEEDS.match(part):
            raise ConfigError(f"--seeds {text!r}: {part!r} is not a seed or a range; write e.g. "
                              "0-4, 0,3,7 or 0-2,10")
        low, _, high = part.partition("-")
        first, last = int(low), int(high or low)
        if last < first:
            raise ConfigError(f"--seeds {text!r}: the range {part!r} runs backwards; write "
                              f"{last}-{first}")
        if last > MAX_SEED:
            raise ConfigError(f"--seeds {text!r}: {last} is above the largest seed, {MAX_SEED} "
                              "(2**32 - 1)")
        if last - first >= MAX_CELLS:
            raise ConfigError(f"--seeds {text!r}: {part!r} holds more than {MAX_CELLS} seeds, "
                              "the most a sweep takes")
        seeds.update(dict.fromkeys(range(first, last + 1)))
        if len(seeds) > MAX_CELLS:
            raise ConfigError(f"--seeds {text!r}: more than {MAX_CELLS} seeds, the most a "
                              "sweep takes")
    return list(seeds)


def parse_names(option: str, text: str) -> list[str]:
    names = [n.strip() for n in text.split(",")]
    if any(not n for n in names):
        raise ConfigError(f"{option} {text!r}: an empty name; separate names by single commas")
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise ConfigError(f"{option} {text!r}: {twice!r} is given twice")
    return names


def split_options(options: dict[str, Any], methods: list[str]) -> dict[str, dict[str, Any]]:
    """`--set METHOD.KEY=VALUE` options, by method."""
    by_method: dict[str, dict[str, Any]] = {m: {} for m in methods}
    for scoped, value in options.items():
        method, dot, key = scoped.rpartition(".")
        if not (dot and method and key):
            example = f"{method or methods[0]}.{key or 'KEY'}"
            raise ConfigError(f"--set {scoped}=...: a sweep's options name their method, "
                              f"METHOD.KEY=VALUE (e.g. {example}=...)")
        if method not in by_method:
            raise ConfigError(f"--set {scoped}=...: {method!r} is not one of --methods "
                              f"({', '.join(methods)}); add it there or drop the option")
        by_method[method][key] = value
    return by_method


@dataclass(frozen=True)
class Cell:
    """One row to produce: a job on a zoo, at a seed (None for a reference)."""

    zoo_arg: str            # the zoo as the user named it
    zoo: Zoo
    source: ZooSource
    job: Job
    seed: int | None
    n_samples: int

    @property
    def needs_null(self) -> bool:
        return self.job is not REFERENCE

    @property
    def label(self) -> str:
        seed = "" if self.seed is None else f" seed {self.seed}"
        return f"{self.job.label}{seed} on {self.zoo.name}"

    def spec(self, threads: int, device: str) -> dict[str, Any]:
        """The cell in plain values, as a worker is sent it."""
        return {"zoo": self.source.as_dict(), "name": self.job.name, "kind": self.job.kind,
                "config": self.job.config, "seed": self.seed, "n_samples": self.n_samples,
                "threads": threads, "device": device}

    def rerun_command(self, results_dir: Path) -> str:
        """The `wmplat evaluate` command that computes this cell (and reuses the rest)."""
        method = "replica" if self.job.is_reference else self.job.name
        args = ["wmplat", "evaluate", "--method", method, "--zoo", self.zoo_arg,
                "--samples", str(self.n_samples), "--results-dir", str(results_dir)]
        if self.seed is not None:
            args += ["--seed", str(self.seed)]
        for key, value in ({} if self.job.is_reference else self.job.config).items():
            args += ["--set", f"{key}={_json(value)}"]
        return shlex.join(args)


def _json(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def method_jobs(plugins: Plugins, methods: list[str],
                options: dict[str, dict[str, Any]]) -> list[Job]:
    jobs = []
    for name in methods:
        entry = plugins.generators.get(name)
        jobs.append(Job(name, entry.kind, validate_config(entry, options[name]), entry))
    return jobs


def cells_of_zoo(plugins: Plugins, zoo_arg: str, zoo: Zoo, source: ZooSource,
                 methods: list[Job], seeds: list[int], n_samples: int) -> list[Cell]:
    """The zoo's cells: the references first, then each seed's baselines and methods."""
    cells = [Cell(zoo_arg, zoo, source, REFERENCE, None, n_samples),
             Cell(zoo_arg, zoo, source, TRAIN_REFERENCE, None, n_samples)]
    baselines = baseline_jobs(plugins, zoo)
    for seed in seeds:
        seen: set[tuple[str, str]] = set()
        for job in [*baselines, *methods]:
            key = (job.name, config_hash(job.config))
            if key not in seen:
                seen.add(key)
                cells.append(Cell(zoo_arg, zoo, source, job, seed, n_samples))
    return cells
