"""The runner: fit a method on a zoo's train split, sample, check, score, store.

An evaluation also runs (or reuses) every baseline at the task's settings and the `fresh`
reference (the heldout runs, scored exactly like samples), so a leaderboard always shows a
method beside them. Each result is written as soon as it is done; a rerun skips what exists.
"""

import inspect
import platform
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError

from . import __version__
from .defaults import DEFAULT_RESULTS_DIR, DEFAULT_SAMPLES, DEFAULT_SEED, DEFAULT_ZOO
from .errors import ConfigError, PluginError, ResultError
from .method import Method
from .metric import BehaviourCache, EvalContext
from .plugins import Plugins, load_plugins
from .progress import status
from .registry import Entry
from .results import RESULT, config_hash, read_result, result_folder, write_result
from .schema import Environment, Metrics, Result
from .zoo import Zoo
from .zoos import open_zoo

FRESH = "fresh"


@dataclass
class Job:
    """One row to produce: a method or baseline with a validated config, or the reference."""

    name: str
    kind: str
    config: dict[str, Any]
    entry: Entry | None = None      # None for the reference

    @property
    def label(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.config.items())
        return f"{self.name}({args})" if args else self.name


def evaluate(method: str, zoo: str = DEFAULT_ZOO, n_samples: int = DEFAULT_SAMPLES,
             seed: int = DEFAULT_SEED,
             results_dir: Path = DEFAULT_RESULTS_DIR, options: dict[str, Any] | None = None,
             force: bool = False) -> list[Result]:
    """Evaluate `method` and the references on `zoo`; return the rows, the method's first."""
    if n_samples < 1:
        raise ConfigError(f"--samples must be at least 1, got {n_samples}")
    plugins = load_plugins()
    entry = plugins.generators.get(method)
    main_job = Job(method, entry.kind, validate_config(entry, options or {}), entry)
    opened = open_zoo(zoo, plugins)
    jobs = [main_job] + [j for j in baseline_jobs(plugins, opened) if not _same(j, main_job)]
    jobs.append(Job(FRESH, "reference", {}))
    cache = BehaviourCache(opened)
    rows = []
    for i, job in enumerate(jobs, start=1):
        status(f"[{i}/{len(jobs)}] {job.label} ({job.kind}) on {opened.name}")
        rows.append(_run_or_reuse(job, opened, cache, n_samples, seed, results_dir, force))
    return rows


def validate_config(entry: Entry, options: dict[str, Any]) -> dict[str, Any]:
    """Options -> the config a method is built with, defaults filled in, or a ConfigError."""
    cls = entry.cls
    if cls.Config is not None:
        try:
            return cls.Config(**options).model_dump(mode="json")
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'options'}: {e['msg']}"
                                 for e in exc.errors())
            raise ConfigError(f"bad option for {entry.kind} {entry.name!r}: {problems}") from None
    if not options:
        return {}
    if cls.__init__ is Method.__init__:
        raise ConfigError(f"{entry.kind} {entry.name!r} takes no options, got {sorted(options)}")
    params = inspect.signature(cls.__init__).parameters.values()
    if any(p.kind == p.VAR_KEYWORD for p in params):
        return dict(options)
    names = sorted(p.name for p in params
                   if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
    unknown = sorted(set(options) - set(names))
    if unknown:
        raise ConfigError(f"{entry.kind} {entry.name!r} does not take option(s) {unknown}; "
                          f"it takes {names or 'none'}")
    return dict(options)


def baseline_jobs(plugins: Plugins, zoo: Zoo) -> list[Job]:
    jobs = []
    for entry in plugins.generators.entries():
        if entry.kind != "baseline":
            continue
        for setting in zoo.task.baseline_settings.get(entry.name, [{}]):
            jobs.append(Job(entry.name, "baseline", validate_config(entry, setting), entry))
    return jobs


def _same(a: Job, b: Job) -> bool:
    return a.name == b.name and config_hash(a.config) == config_hash(b.config)


def _run_or_reuse(job: Job, zoo: Zoo, cache: BehaviourCache, n_samples: int, seed: int,
                  results_dir: Path, force: bool) -> Result:
    reference = job.entry is None
    folder = result_folder(results_dir, zoo.name, job.name, config_hash(job.config),
                           None if reference else seed, n_samples)
    version = __version__ if reference else job.entry.provider.version
    if not force and (folder / RESULT).is_file():
        try:
            stored = read_result(folder / RESULT)
        except ResultError as exc:
            status(f"  stored result is unreadable, recomputing: {exc}")
        else:
            if stored.zoo_revision == zoo.revision and stored.method_version == version:
                status(f"  reusing {folder / RESULT}")
                return stored
    start = time.perf_counter()
    if reference:
        samples, runs = fresh_samples(zoo)
    else:
        samples, runs = generate(job, zoo, n_samples, seed), None
    values, per_sample = score(samples, zoo, cache, runs)
    result = Result(
        method=job.name, kind=job.kind, method_version=version, zoo=zoo.name,
        zoo_revision=zoo.revision, task=zoo.task.name, n_samples=len(samples),
        seed=None if reference else seed, config=job.config,
        config_hash=config_hash(job.config), metrics=Metrics(**values),
        environment=environment(), created_at=datetime.now(UTC),
        wall_seconds=round(time.perf_counter() - start, 3))
    write_result(folder, result, per_sample)
    status(f"  done in {result.wall_seconds:.1f}s -> {folder / RESULT}")
    return result


def fresh_samples(zoo: Zoo) -> tuple[torch.Tensor, torch.Tensor]:
    """The last checkpoint of each heldout run: what a freshly trained model looks like."""
    last: dict[int, int] = {}
    models = zoo.heldout_models()
    for i, m in enumerate(models):
        if m.run not in last or m.step > models[last[m.run]].step:
            last[m.run] = i
    index = sorted(last.values())
    return zoo.heldout_weights()[index], torch.tensor([models[i].run for i in index])


def generate(job: Job, zoo: Zoo, n: int, seed: int) -> torch.Tensor:
    """Build, fit and sample the method; check what it returns."""
    who = f"{job.kind} {job.name!r} ({job.entry.provider})"
    try:
        method = job.entry.cls(**job.config)
        method.fit(zoo.without_heldout(), seed)
        samples = method.sample(n, seed)
    except (ConfigError, PluginError):
        raise
    except Exception as exc:
        raise PluginError(f"{who} failed: {type(exc).__name__}: {exc}") from exc
    return check_samples(samples, n, zoo.num_params, who)


def check_samples(samples: Any, n: int, num_params: int, who: str) -> torch.Tensor:
    if not isinstance(samples, torch.Tensor):
        raise PluginError(f"{who} returned {type(samples).__name__} from sample(), "
                          "expected a torch.Tensor")
    if tuple(samples.shape) != (n, num_params):
        raise PluginError(f"{who} returned samples of shape {list(samples.shape)}, "
                          f"expected [{n}, {num_params}] (n samples x the zoo's num_params)")
    if not samples.is_floating_point():
        raise PluginError(f"{who} returned samples of dtype {samples.dtype}, "
                          "expected floating-point weights")
    samples = samples.detach().cpu().float().contiguous()
    bad = ~torch.isfinite(samples)
    if bad.any():
        rows = int(bad.any(dim=1).sum())
        raise PluginError(f"{who} returned {int(bad.sum())} non-finite values (NaN or inf) "
                          f"in {rows} of {n} samples")
    return samples


def score(samples: torch.Tensor, zoo: Zoo, cache: BehaviourCache,
          sample_runs: torch.Tensor | None) -> tuple[dict, dict[str, torch.Tensor]]:
    """Run every registered metric; return (summary values, per-sample values)."""
    ctx = EvalContext(samples=samples, zoo=zoo, cache=cache, sample_runs=sample_runs)
    summary: dict[str, float | None] = {}
    per_sample: dict[str, torch.Tensor] = {}
    owner: dict[str, str] = {}
    for entry in load_plugins().metrics.entries():
        values = _compute(entry, ctx)
        for name in [*values.summary, *values.per_sample]:
            if name in owner and owner[name] != entry.name:
                raise PluginError(f"metrics {owner[name]!r} and {entry.name!r} both report "
                                  f"{name!r}")
            owner[name] = entry.name
        summary.update(values.summary)
        per_sample.update(values.per_sample)
    return summary, per_sample


def _compute(entry: Entry, ctx: EvalContext):
    who = f"metric {entry.name!r} ({entry.provider})"
    try:
        values = entry.cls().compute(ctx)
    except Exception as exc:
        raise PluginError(f"{who} failed: {type(exc).__name__}: {exc}") from exc
    n = len(ctx.samples)
    for name, tensor in values.per_sample.items():
        if not isinstance(tensor, torch.Tensor) or tuple(tensor.shape) != (n,):
            raise PluginError(f"{who} returned per-sample {name!r} that is not a tensor [{n}]")
        if torch.isnan(tensor).any():
            raise PluginError(f"{who} returned NaN in per-sample {name!r}")
    for name, value in values.summary.items():
        if value is not None and not isinstance(value, (int, float, tuple, list)):
            raise PluginError(f"{who} returned summary {name!r} = {value!r}, not a number")
    return values


def environment() -> Environment:
    return Environment(wmplat=__version__, torch=torch.__version__,
                       python=platform.python_version())

