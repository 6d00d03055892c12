"""`wmplat sweep`: a grid of evaluations, checked whole before any cell runs."""

import os
from pathlib import Path
from typing import Any

from ..engine.device import check_device_name, resolve_device
from ..errors import ConfigError
from ..evaluation.defaults import DEFAULT_RESULTS_DIR, DEFAULT_SAMPLES
from ..evaluation.runner import check_no_conflicts, check_ranges, open_checked_zoo
from ..evaluation.store import prepare_results_dir
from ..plugins import IN_PROCESS, Plugins, load_plugins
from .driver import Driver, Outcome
from .grid import Cell, cells_of_zoo, method_jobs, split_options
from .zoos import zoo_source

EXECUTORS = ("local", "ray")


def sweep(methods: list[str], zoos: list[str], seeds: list[int],
          n_samples: int = DEFAULT_SAMPLES, results_dir: Path = DEFAULT_RESULTS_DIR,
          options: dict[str, Any] | None = None, executor: str = "local",
          address: str | None = None, workers: int | None = None,
          cpus_per_cell: int = 1, device: str = "cpu") -> tuple[list[Cell], Outcome]:
    """Every (method, zoo, seed) cell, with the baselines and references of each zoo: the ones
    stored already reused, the others computed by `executor` on `device` (the workers'; a Ray
    task of `cuda` asks for a GPU). Returns the cells and what happened to them."""
    for seed in seeds:
        check_ranges(n_samples, seed)
    check_resources(executor, address, workers, cpus_per_cell)
    device = check_device_name(device)
    if executor == "local":
        resolve_device(device)          # this machine's: say now if it has no such device
    plugins = load_plugins()
    check_no_conflicts(plugins)
    jobs = method_jobs(plugins, methods, split_options(options or {}, methods))
    prepare_results_dir(results_dir)
    cells, named = [], {}
    for name in zoos:
        zoo = open_checked_zoo(name, plugins, n_samples)
        source = zoo_source(zoo)
        if source.key in named:         # a name and a folder, say: its cells would be twice
            raise ConfigError(f"--zoos: {named[source.key]!r} and {name!r} are the same zoo "
                              f"({zoo.name} at revision {zoo.revision}); give it once")
        named[source.key] = name
        cells += cells_of_zoo(plugins, name, zoo, source, jobs, seeds, n_samples)
    needed = needed_plugins(cells, plugins)
    gpus = 1 if device.startswith("cuda") else 0
    with make_executor(executor, address, workers, cpus_per_cell, gpus) as runner:
        check_workers(runner, cells, needed)
        return cells, Driver(cells, runner, results_dir, cpus_per_cell, device).run()


def check_resources(executor: str, address: str | None, workers: int | None,
                    cpus_per_cell: int) -> None:
    if executor not in EXECUTORS:
        raise ConfigError(f"--executor {executor!r}: choose {' or '.join(EXECUTORS)}")
    if address is not None and executor != "ray":
        raise ConfigError("--address is for --executor ray (the local executor runs on this "
                          "machine)")
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    if cpus_per_cell < 1:
        raise ConfigError(f"--cpus-per-cell must be at least 1, got {cpus_per_cell}")


def make_executor(executor: str, address: str | None, workers: int | None,
                  cpus_per_cell: int, gpus_per_cell: int):
    if executor == "ray":
        from .ray_executor import RayExecutor

        num_cpus = None if workers is None else workers * cpus_per_cell
        return RayExecutor(address, workers, cpus_per_cell, gpus_per_cell, num_cpus)
    from .local import LocalExecutor

    return LocalExecutor(workers or max(1, (os.cpu_count() or 1) // cpus_per_cell))


def needed_plugins(cells: list[Cell], plugins: Plugins) -> dict:
    """{"kind:name": provider} of every plugin entry the cells use: their methods and
    baselines, every metric, the registered tasks of their zoos. One registered in this process
    only is refused here, before any worker starts: no worker could import it."""
    sources = [c.source for c in cells]
    needed = {f"{j.kind}:{j.name}": j.entry.provider for c in cells
              if not (j := c.job).is_reference}
    needed |= {f"metric:{e.name}": e.provider for e in plugins.metrics.entries()}
    needed |= {f"dataset:{s.task}": plugins.datasets.get(s.task).provider
               for s in sources if s.task is not None}
    for key, provider in sorted(needed.items()):
        if provider.package == IN_PROCESS:
            kind, name = key.split(":", 1)
            raise ConfigError(
                f"{kind} {name!r} is registered in this process only "
                "(wmplat.plugins.register); a sweep's workers load plugins from installed "
                "packages: install it as a package (`wmplat new-plugin` makes one)")
    return needed


def check_workers(runner, cells: list[Cell], needed: dict) -> None:
    """Every worker must have the plugins the cells use, at the driver's versions: it imports
    them itself. One line names the first that differs and what to install."""
    sources = list({c.source.key: c.source.as_dict() for c in cells}.values())
    for answer in runner.describe(sources):
        for key, provider in sorted(needed.items()):
            kind, name = key.split(":", 1)
            have = answer["entries"].get(key)
            if have is None:
                raise ConfigError(
                    f"the sweep's worker on {answer['host']} lacks {kind} {name!r} (package "
                    f"{provider.package} {provider.version} here): install the same plugins "
                    "on every worker (docs/sweeps.md)")
            if tuple(have) != (provider.package, provider.version):
                raise ConfigError(
                    f"the sweep's worker on {answer['host']} has {kind} {name!r} from "
                    f"{have[0]} {have[1]}, this machine from {provider.package} "
                    f"{provider.version}: install the same versions on every worker")
