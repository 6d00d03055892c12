"""The runner: fit a method on a zoo's train split, sample, check, score, store.

An evaluation also runs (or reuses) every baseline at the task's settings and the `fresh`
reference (the heldout runs, scored exactly like samples), so a leaderboard always shows a
method beside them. Each result is written as soon as it is done; a rerun skips what exists.
"""

import functools
import inspect
import math
import numbers
import platform
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import torch
from pydantic import ValidationError

from .. import __version__
from ..engine.alignment import check_groups
from ..engine.budget import megabytes_setting
from ..engine.device import CPU, resolve_device
from ..engine.progress import stage, stages, status
from ..errors import ConfigError, PluginError, ResultError
from ..measures import RUNNER_NAMES, RUNNER_PER_SAMPLE
from ..method import Diagnostics, Method
from ..metric import BehaviourCache, EvalContext, MetricValues
from ..names import NAME_RULE, is_name
from ..plugins import Plugins, load_plugins
from ..plugins.registry import Entry
from ..report.preview import heatmap_preview
from ..schema import Environment, Metrics, Result
from ..zoo.catalogue import open_zoo
from ..zoo.format import MAX_WEIGHT, Zoo, independent_units
from .defaults import (
    DEFAULT_RESULTS_DIR,
    DEFAULT_SAMPLES,
    DEFAULT_SEED,
    DEFAULT_ZOO,
    MAX_SAMPLES,
    MAX_SEED,
    SAMPLE_MEMORY,
    SAMPLE_MEMORY_ENV,
)
from .heldout_copies import copy_radius, heldout_l2, is_copy, train_separation
from .plugin_figures import RowFigure, check_figures, row_figures
from .statistics import judge
from .store import (
    RESULT,
    config_hash,
    config_label,
    prepare_results_dir,
    read_row,
    recover_row,
    result_folder,
    write_result,
    zoo_key,
)

FRESH, TRAIN = "fresh", "train"


@dataclass
class Job:
    """One row to produce: a method or baseline with a validated config, or the reference."""

    name: str
    kind: str
    config: dict[str, Any]
    entry: Entry | None = None      # None for the reference

    @property
    def is_reference(self) -> bool:
        return self.entry is None

    @property
    def label(self) -> str:
        return config_label(self.name, self.config)


def evaluate(method: str, zoo: str = DEFAULT_ZOO, n_samples: int = DEFAULT_SAMPLES,
             seed: int = DEFAULT_SEED,
             results_dir: Path = DEFAULT_RESULTS_DIR, options: dict[str, Any] | None = None,
             force: bool = False, revision: str | None = None,
             device: str | torch.device = "cpu") -> list[Result]:
    """Evaluate `method` and the references on `zoo` (a Hub zoo at `revision`, if given),
    computing on `device` (`wmplat.engine.device.resolve_device`); return the rows, the
    method's first."""
    check_ranges(n_samples, seed)
    device = resolve_device(device)
    plugins = load_plugins()
    entry = plugins.generators.get(method)
    check_no_conflicts(plugins)
    main_job = Job(method, entry.kind, validate_config(entry, options or {}), entry)
    prepare_results_dir(results_dir)
    opened = open_checked_zoo(zoo, plugins, n_samples, revision)
    jobs = [main_job] + [j for j in baseline_jobs(plugins, opened) if not _same(j, main_job)]
    jobs += [TRAIN_REFERENCE, REFERENCE]
    evaluation = Evaluation(opened, n_samples, seed, results_dir, force, device)
    rows = []
    for i, job in enumerate(jobs, start=1):
        status(f"[{i}/{len(jobs)}] {job.label} ({job.kind}) on {opened.name}")
        rows.append(evaluation.run(job))
    return rows


def check_no_conflicts(plugins: Plugins) -> None:
    """Every baseline and metric runs, so a name two packages claim must not pick one
    silently."""
    for name, claims in plugins.generators.conflicts().items():
        if any(c.kind == "baseline" for c in claims):
            plugins.generators.get(name)
    plugins.metrics.check_no_conflicts()


def open_checked_zoo(zoo: str, plugins: Plugins, n_samples: int,
                     revision: str | None = None) -> Zoo:
    """The zoo, opened (built or pulled if need be), with its samples' memory and its task's
    symmetry checked."""
    opened = open_zoo(zoo, plugins, revision)
    check_sample_memory(n_samples, opened)
    check_task_symmetry(opened)
    return opened


def check_ranges(n_samples: int, seed: int) -> None:
    """--samples and --seed within their documented ranges, before any work is done."""
    _check_integer("--samples", n_samples, 1, MAX_SAMPLES)
    _check_integer("--seed", seed, 0, MAX_SEED, " (2**32 - 1, so that numpy's legacy seeding "
                   "takes it too)")


def _check_integer(option: str, value: Any, low: int, high: int, why: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"{option} must be an integer, got {value!r}")
    if value < low:
        raise ConfigError(f"{option} must be at least {low}, got {value}")
    if value > high:
        raise ConfigError(f"{option} must be at most {high}{why}, got {value}")


def check_sample_memory(n_samples: int, zoo: Zoo) -> None:
    """The samples, as float32, must fit the limit on their memory (docs/plugins.md)."""
    limit, row = sample_memory(), zoo.num_params * 4
    if n_samples * row > limit:
        raise ConfigError(
            f"--samples {n_samples}: {n_samples} samples of zoo {zoo.name!r} "
            f"({zoo.num_params} parameters) take {n_samples * row / 2**20:.3g} MB as float32, "
            f"over the limit of {limit / 2**20:.3g} MB on samples ({SAMPLE_MEMORY_ENV}); "
            f"at most {limit // row} fit: ask for fewer, or raise the limit")


def sample_memory() -> int:
    """The limit in bytes: ${SAMPLE_MEMORY_ENV} (megabytes) or SAMPLE_MEMORY."""
    return megabytes_setting(SAMPLE_MEMORY_ENV, SAMPLE_MEMORY)


def check_task_symmetry(zoo: Zoo) -> None:
    """A task's permutation groups must index axes of its parameters: a wrong declaration would
    otherwise surface as an indexing error deep inside an aligned metric."""
    try:
        check_groups(zoo.task.permutation_groups, zoo.param_spec)
    except ValueError as exc:
        raise PluginError(f"task {zoo.task.name!r}: {exc}") from None


def validate_config(entry: Entry, options: dict[str, Any]) -> dict[str, Any]:
    """Options -> the config a method is built with, defaults filled in, or a ConfigError."""
    cls = entry.cls
    if cls.Config is not None:
        try:
            config = cls.Config(**options).model_dump(mode="json")
            # An optional field left unset is not part of the config: adding one to a method
            # must not change the config hash (and the results folder) of its earlier rows.
            return {k: v for k, v in config.items()
                    if v is not None or cls.Config.model_fields[k].default is not None}
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
    """The task's settings for each baseline; for a task without any (an imported zoo's task
    file), the defaults the import derived from the zoo's spread (docs/byoz.md)."""
    settings = zoo.task.baseline_settings or zoo.manifest.provenance.get("baseline_settings", {})
    jobs = []
    for entry in plugins.generators.entries():
        if entry.kind != "baseline":
            continue
        for setting in settings.get(entry.name, [{}]):
            jobs.append(Job(entry.name, "baseline", validate_config(entry, setting), entry))
    return jobs


def _same(a: Job, b: Job) -> bool:
    return a.name == b.name and config_hash(a.config) == config_hash(b.config)


REFERENCE = Job(FRESH, "reference", {})          # the heldout runs: the null
TRAIN_REFERENCE = Job(TRAIN, "reference", {})    # the train runs, each against the others


def job_for(plugins: Plugins, name: str, kind: str, config: dict[str, Any]) -> Job:
    """The job of a row named by plain values (a sweep's cell): a reference is one of the two
    references, a method or baseline gets its registered entry."""
    if kind == "reference":
        return {FRESH: REFERENCE, TRAIN: TRAIN_REFERENCE}[name]
    return Job(name, kind, config, plugins.generators.get(name))


def _shows_stages(compute):
    """Wraps `Evaluation.compute`: the row's stages (fit, sample, diagnostics for a method
    that has them, each metric, judging) are shown as they start (wmplat.progress)."""
    @functools.wraps(compute)
    def run(self, job: Job) -> "Row":
        own = 0 if job.is_reference else 2 + has_diagnostics(job.entry.cls)
        total = own + len(applicable_metrics(self.zoo)) + 1
        with stages(job.label, total):
            return compute(self, job)
    return run


class Evaluation:
    """Runs jobs on one zoo with shared caches, and the heldout runs' values as the null."""

    def __init__(self, zoo: Zoo, n_samples: int, seed: int, results_dir: Path, force: bool,
                 device: torch.device = CPU, cache: BehaviourCache | None = None,
                 null: dict[str, torch.Tensor] | None = None,
                 separation: tuple[torch.Tensor, torch.Tensor] | None = None):
        """`cache`, `null` (the `fresh` reference's per-sample values) and `separation` (of
        the train runs, `train_separation`) may come from an earlier evaluation of the same
        zoo: a sweep's worker computes one row with them."""
        self.zoo, self.n_samples, self.seed = zoo, n_samples, seed
        self.results_dir, self.force, self.device = results_dir, force, device
        self.cache = cache or BehaviourCache(zoo, device)
        self._done: dict[Path, Result] = {}
        self._null = null
        self.separation = separation
        self.per_sample_names = {*RUNNER_PER_SAMPLE, *(
            name for entry in applicable_metrics(zoo) for name in entry.cls.per_sample)}

    def folder(self, job: Job) -> Path:
        return result_folder(self.results_dir, zoo_key(self.zoo.name, self.zoo.revision),
                             job.name, config_hash(job.config),
                             None if job.is_reference else self.seed, self.n_samples)

    def run(self, job: Job) -> Result:
        """The stored row of `job` if it checks out, else the row computed and written."""
        folder = self.folder(job)
        if folder not in self._done:
            recover_row(folder)
            stored = self.stored(job)
            if stored is not None:
                status(f"  reusing {folder / RESULT}")
            self._done[folder] = stored or self._compute_and_write(job, folder)
        return self._done[folder]

    def _compute_and_write(self, job: Job, folder: Path) -> Result:
        row = self.compute(job)
        write_result(folder, *row)
        status(f"  {row.result.verdict or 'done'} in {row.result.wall_seconds:.1f}s -> "
               f"{folder / RESULT}")
        return row.result

    def null(self) -> dict[str, torch.Tensor]:
        """Per-sample values of the heldout runs, computed or read back (and checked) on first
        use."""
        if self._null is None:
            self.run(REFERENCE)
        return self._null

    def _copy_radius(self, heldout_null: torch.Tensor) -> float:
        """Half the smallest distance between independent runs of this zoo: heldout runs to
        each other (`heldout_null`), train runs to each other and to the heldout runs."""
        if self.separation is None:
            finals, units = final_checkpoints(self.zoo, "train")
            self.separation = train_separation(
                self.zoo.train_weights(), self.cache.runs("train"), finals, units,
                self.zoo.heldout_weights(), self.zoo.param_spec,
                self.zoo.task.permutation_groups)
        return copy_radius(heldout_null, *self.separation)

    def _own_run(self, runs: torch.Tensor | None):
        """exclude(i) -> bool [T]: the train checkpoints of sample i's own run; None for
        samples that have no run."""
        if runs is None:
            return None
        return lambda i: self.cache.runs("train") == runs[i]

    def _version(self, job: Job) -> str:
        return __version__ if job.is_reference else job.entry.provider.version

    def stored(self, job: Job) -> Result | None:
        """The stored row, if it is whole, checks out and was computed from exactly this job;
        else None, with a one-line note why it is recomputed."""
        folder = self.folder(job)
        if self.force or not folder.exists():
            return None
        try:
            stored, values = read_row(folder, self.per_sample_names)
        except ResultError as exc:
            status(f"  recomputing: the stored row does not check out: {exc}")
            return None
        if reason := self.mismatch(job, stored):
            status(f"  recomputing {folder}: {reason}")
            return None
        if job is REFERENCE:
            self._null = values
        return stored

    def mismatch(self, job: Job, stored: Result) -> str | None:
        """What differs between a stored row and the row `job` would compute, if anything."""
        split = "heldout" if job is REFERENCE else "train"
        n = len(self.cache.runs(split).unique()) if job.is_reference else self.n_samples
        expected = {
            "method": job.name, "kind": job.kind, "config": job.config,
            "seed": None if job.is_reference else self.seed, "n_samples": n,
            "zoo": self.zoo.name, "zoo_revision": self.zoo.revision, "task": self.zoo.task.name,
            "method_version": self._version(job)}
        for field, value in expected.items():
            if getattr(stored, field) != value:
                return f"its {field} is {getattr(stored, field)!r}, not {value!r}"
        if stored.environment.wmplat != __version__:
            return f"computed by wmplat {stored.environment.wmplat}, this is {__version__}"
        return None

    @_shows_stages
    def compute(self, job: Job) -> "Row":
        """Compute the row of `job` (after the reference, if it needs the null), writing
        nothing."""
        start = time.perf_counter()
        if job.is_reference:
            samples, runs = final_checkpoints(self.zoo, "heldout" if job is REFERENCE else "train")
            diagnostics = None
        else:
            (samples, diagnostics), runs = generate(job, self.zoo, self.n_samples, self.seed,
                                                    self.device), None
        summary, per_sample, figures = score(samples, self.zoo, self.cache, runs, diagnostics)
        verdict, statistics = self._judge(job, samples, runs, per_sample)
        preview = heatmap_preview(samples, self.zoo.train_weights(), self.zoo.param_spec,
                                  self.zoo.task.permutation_groups, self._own_run(runs))
        result = Result(
            method=job.name, kind=job.kind, method_version=self._version(job),
            zoo=self.zoo.name, zoo_revision=self.zoo.revision, task=self.zoo.task.name,
            n_samples=len(samples), seed=None if job.is_reference else self.seed,
            config=job.config, config_hash=config_hash(job.config),
            metrics=Metrics(**summary, **statistics), verdict=verdict,
            environment=environment(self.device), created_at=datetime.now(UTC),
            wall_seconds=round(time.perf_counter() - start, 3))
        if job is REFERENCE:
            self._null = per_sample
        return Row(result, per_sample, preview, figures)

    def _judge(self, job: Job, samples: torch.Tensor, runs: torch.Tensor | None,
               per_sample: dict[str, torch.Tensor]) -> tuple[str | None, dict]:
        """Judge the samples against the heldout runs, and check that none copies one
        (docs/trust.md); add the per-sample outcomes to `per_sample`. Returns the verdict and
        the statistics."""
        stage("judging")
        per_sample["heldout_l2"] = heldout_l2(
            samples, self.zoo.heldout_weights(), self.zoo.param_spec,
            self.zoo.task.permutation_groups, runs if job is REFERENCE else None,
            self.cache.runs("heldout"))
        null = per_sample if job is REFERENCE else self.null()
        judged = judge(per_sample, null, leave_one_out=job is REFERENCE)
        copies = is_copy(per_sample["heldout_l2"], self._copy_radius(null["heldout_l2"]))
        per_sample.update(category=judged.category, heldout_copy=copies)
        statistics = {**judged.summary, "heldout_copy_rate": float(copies.double().mean())}
        verdict = statistics.pop("verdict")
        # a method that saw what it must never see gets no verdict
        return ("invalid" if copies.any() else verdict), statistics


def final_checkpoints(zoo: Zoo, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The last checkpoint of each independent unit of a split (each run, or each checkpoint
    of a split with one run), and the units: what a trained model is."""
    models = zoo.heldout_models() if split == "heldout" else zoo.train_models()
    weights = zoo.heldout_weights() if split == "heldout" else zoo.train_weights()
    units = independent_units(models)
    last: dict[int, int] = {}
    for i, (m, unit) in enumerate(zip(models, units, strict=True)):
        if unit not in last or m.step > models[last[unit]].step:
            last[unit] = i
    index = sorted(last.values())
    return weights[index], torch.tensor([units[i] for i in index])


class Row(NamedTuple):
    """A computed row: what `write_result` stores in the row's folder."""

    result: Result
    per_sample: dict[str, torch.Tensor]
    preview: dict[str, torch.Tensor]
    figures: list[RowFigure]


class Reported(NamedTuple):
    """A method's diagnostics as the runner checked them, and who reported them."""

    who: str
    kind: str
    name: str
    diagnostics: Diagnostics


class Generated(NamedTuple):
    samples: torch.Tensor
    diagnostics: Reported | None


def generate(job: Job, zoo: Zoo, n: int, seed: int, device: torch.device = CPU) -> Generated:
    """Build the method, tell it the `device` to compute on, fit and sample it, then ask for
    its diagnostics if it has any; check what it returns."""
    who = f"{job.kind} {job.name!r} ({job.entry.provider})"
    try:
        method = job.entry.cls(**job.config)
        method.device = device
        stage("fit")
        method.fit(zoo.without_heldout(), seed)
        stage("sample")
        samples = check_samples(method.sample(n, seed), n, zoo.num_params, who)
        diagnostics = None
        if has_diagnostics(job.entry.cls):
            stage("diagnostics")
            diagnostics = check_diagnostics(method.diagnostics(seed), who)
    except (ConfigError, PluginError):
        raise
    except Exception as exc:
        raise PluginError(f"{who} failed: {type(exc).__name__}: {exc}") from exc
    reported = None if diagnostics is None else Reported(who, job.kind, job.name, diagnostics)
    return Generated(samples, reported)


def has_diagnostics(cls: type[Method]) -> bool:
    """Whether a method class measures itself (overrides `Method.diagnostics`)."""
    return getattr(cls, "diagnostics", Method.diagnostics) is not Method.diagnostics


def check_diagnostics(value: Any, who: str) -> Diagnostics | None:
    """What `diagnostics()` returned: None, or a Diagnostics whose summary names are names,
    whose values are finite or None, and whose figures are valid; else a PluginError."""
    if value is None:
        return None
    if not isinstance(value, Diagnostics):
        raise PluginError(f"{who} returned {type(value).__name__} from diagnostics(), expected "
                          "wmplat.Diagnostics or None")
    if not isinstance(value.summary, dict):
        raise PluginError(f"{who} returned a diagnostics summary of type "
                          f"{type(value.summary).__name__}; expected a dict {{name: float or "
                          "None}}")
    for name in value.summary:
        if not is_name(name):
            raise PluginError(f"{who} returned diagnostic {name!r}, which is not a valid name: "
                              f"{NAME_RULE}")
    check_summary_values(value.summary, who, "diagnostic")
    check_figures(value.figures, who)
    return value


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
    samples = samples.detach().cpu()
    bad = ~torch.isfinite(samples)
    if bad.any():
        rows = int(bad.any(dim=1).sum())
        raise PluginError(f"{who} returned {int(bad.sum())} non-finite values (NaN or inf) "
                          f"in {rows} of {n} samples")
    # checked in the method's own dtype: a float64 1e300 is too large, not infinite
    beyond = samples.abs() > MAX_WEIGHT
    if beyond.any():
        largest = float(samples.abs().max())
        raise PluginError(f"{who} returned {int(beyond.sum())} values beyond the limit "
                          f"|w| <= {MAX_WEIGHT:.0e} (largest |w| {largest:.0e}) in "
                          f"{int(beyond.any(dim=1).sum())} of {n} samples; trained networks "
                          "have far smaller weights")
    return samples.float().contiguous()


class Scores(NamedTuple):
    summary: dict[str, float | None]
    per_sample: dict[str, torch.Tensor]
    figures: list[RowFigure]


STATISTICS, SCHEMA = "wmplat's statistics", "the result schema"


def score(samples: torch.Tensor, zoo: Zoo, cache: BehaviourCache,
          sample_runs: torch.Tensor | None, diagnostics: Reported | None = None) -> Scores:
    """Run every registered metric and add the method's diagnostics; return the summary
    values, per-sample values and figures of the row."""
    ctx = EvalContext(samples=samples, zoo=zoo, cache=cache, sample_runs=sample_runs)
    summary: dict[str, float | None] = {}
    per_sample: dict[str, torch.Tensor] = {}
    produced = []
    # names a metric may not use: the statistics', and the row's own fields (CSV columns)
    owner = {name: STATISTICS for name in RUNNER_NAMES}
    schema_fields = (*Result.model_fields, *Environment.model_fields)
    owner.update({name: SCHEMA for name in schema_fields})
    applicable = applicable_metrics(zoo)
    metrics = load_plugins().metrics.entries()
    for entry in metrics:
        if entry in applicable:
            stage(f"metric {entry.name}")
            values = _compute(entry, ctx)
        else:
            values = MetricValues(summary=dict.fromkeys(entry.cls.summary))
        for name in [*values.summary, *values.per_sample]:
            if name in owner and owner[name] != entry.name:
                raise PluginError(f"metrics {owner[name]!r} and {entry.name!r} both report "
                                  f"{name!r}")
            owner[name] = entry.name
        summary.update(values.summary)
        per_sample.update(values.per_sample)
        produced.append(("metric", entry.name, f"metric {entry.name!r} ({entry.provider})",
                         values.figures))
    if diagnostics is not None:
        # a metric's declared names too: one it left out of this row is its column elsewhere
        owner = {**{name: entry.name for entry in metrics
                    for name in (*entry.cls.summary, *entry.cls.per_sample)}, **owner}
        for name in diagnostics.diagnostics.summary:
            if name in owner:
                by = owner[name] if owner[name] in (STATISTICS, SCHEMA) else \
                    f"metric {owner[name]!r}"
                raise PluginError(f"{diagnostics.who} returned diagnostic {name!r}, a name "
                                  f"{by} reports; name it otherwise")
        summary.update(diagnostics.diagnostics.summary)
        produced.append((diagnostics.kind, diagnostics.name, diagnostics.who,
                         diagnostics.diagnostics.figures))
    return Scores(summary, per_sample, row_figures(produced))


def applicable_metrics(zoo: Zoo) -> list[Entry]:
    """The registered metrics that apply to the zoo's task (`Metric.applies_to`)."""
    return [entry for entry in load_plugins().metrics.entries() if _applies(entry, zoo.task)]


def _applies(entry: Entry, task) -> bool:
    try:
        return bool(entry.cls.applies_to(task))
    except Exception as exc:
        raise PluginError(f"metric {entry.name!r} ({entry.provider}) failed in applies_to: "
                          f"{type(exc).__name__}: {exc}") from exc


def _compute(entry: Entry, ctx: EvalContext):
    who = f"metric {entry.name!r} ({entry.provider})"
    try:
        values = entry.cls().compute(ctx)
    except Exception as exc:
        raise PluginError(f"{who} failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(values, MetricValues):
        raise PluginError(f"{who} returned {type(values).__name__}, expected MetricValues")
    undeclared = (set(values.per_sample) - set(entry.cls.per_sample)) | \
        (set(values.summary) - set(entry.cls.summary))
    if undeclared:
        raise PluginError(f"{who} returned {sorted(undeclared)}, which it does not declare in "
                          "`per_sample` or `summary`")
    if missing := sorted(set(entry.cls.per_sample) - set(values.per_sample)):
        raise PluginError(f"{who} did not return per-sample {missing}, which it declares in "
                          "`per_sample` (a stored row is reused only with the same per-sample "
                          "values)")
    n = len(ctx.samples)
    for name, tensor in values.per_sample.items():
        if not isinstance(tensor, torch.Tensor) or tuple(tensor.shape) != (n,):
            raise PluginError(f"{who} returned per-sample {name!r} that is not a tensor [{n}]")
        if torch.isnan(tensor).any():
            raise PluginError(f"{who} returned NaN in per-sample {name!r}")
    check_summary_values(values.summary, who, "summary")
    check_figures(values.figures, who)
    return values


def check_summary_values(summary: dict, who: str, what: str) -> None:
    for name, value in summary.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value)):
            raise PluginError(f"{who} returned {what} {name!r} = {value!r}; expected a finite "
                              "number or None")


def environment(device: torch.device = CPU) -> Environment:
    return Environment(wmplat=__version__, torch=torch.__version__,
                       python=platform.python_version(), device=str(device))

