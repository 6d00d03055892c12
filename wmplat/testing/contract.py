"""The plugin contract as checks a plugin's own tests run: each raises AssertionError saying
what broke the contract and what to do, and returns quietly otherwise.

    from wmplat.testing import check_method
    def test_contract(): check_method(MyMethod, options={"steps": 10})

The checks call the runner's own validation (options, samples, metric values), so what passes
here passes `wmplat evaluate`, and add what the runner cannot see in one run: the same seed
gives the same numbers, another seed other numbers, and no sample copies a heldout model.
"""

import math
from collections.abc import Callable
from typing import Any

import torch

from ..engine.alignment import _permute_param, check_groups
from ..errors import ConfigError, WmplatError, ZooError
from ..evaluation.heldout_copies import copy_radius, heldout_l2, is_copy
from ..evaluation.runner import (
    _compute,
    check_diagnostics,
    check_samples,
    has_diagnostics,
    validate_config,
)
from ..method import Method, random_generator
from ..metric import BehaviourCache, EvalContext, Metric
from ..plugins import HOOKS, RESERVED_NAMES, _invalid, load_plugins
from ..plugins.registry import Entry, Provider
from ..task import Task
from ..zoo.format import Zoo, independent_units, load_zoo, write_zoo
from ..zoo.params import normalize_spec, num_params
from ..zoo.train_view import HELDOUT_REFUSED
from .zoo import tiny_zoo

UNDER_TEST = Provider("contract", "under", "test")  # reads "(under test)" in messages
UNKNOWN_OPTION = "wmplat_contract_no_such_option"


def check_method(cls: type[Method], zoo: Zoo | None = None, *,
                 options: dict[str, Any] | None = None, n: int = 4, seed: int = 0,
                 stochastic: bool = True) -> torch.Tensor:
    """Fit `cls(**options)` on the train view of `zoo` (default: `tiny_zoo()`) and sample `n`
    models, as the runner does; returns the samples.

    Checks: a valid class and name; options validated, an unknown one refused with a
    ConfigError; samples a float32 tensor [n, num_params], finite, within wmplat's limits;
    fit never asks for the heldout split and no sample copies a heldout model; the same seed
    gives the same samples whatever the global random state; with `stochastic`, another
    sample seed gives other samples (pass False for a method that samples deterministically);
    a method with `diagnostics` returns what the runner takes (None or a valid
    wmplat.Diagnostics), called after `sample` with the same seed as the runner calls it.
    """
    kind = "baseline" if isinstance(cls, type) and getattr(cls, "kind", "") == "baseline" \
        else "method"
    _check_class(cls, kind)
    entry = Entry(cls.name, kind, cls, UNDER_TEST)
    config = _expect(lambda: validate_config(entry, dict(options or {})),
                     f"{kind} {cls.name!r}: the options {options!r} are refused")
    _check_unknown_option_refused(entry, config)
    zoo = _full_zoo(zoo)
    samples, other = _fit_and_sample(entry, config, zoo, n, seed, [seed, seed + 1], 1)
    _check_no_heldout_copies(f"{kind} {cls.name!r}", samples, zoo)
    [again] = _fit_and_sample(entry, config, zoo, n, seed, [seed], 2, diagnose=True)
    assert torch.equal(samples, again), (
        f"{kind} {cls.name!r}: fit and sample with seed {seed} twice gave different samples; "
        "take every random draw from `seed` (wmplat.random_generator(seed)), never from global "
        "random state or the clock")
    if stochastic:
        assert not torch.equal(samples, other), (
            f"{kind} {cls.name!r}: sample(n, seed={seed + 1}) gave the same samples as "
            f"seed={seed}; draw them from `seed` (pass stochastic=False if the method is "
            "deterministic)")
    return samples


def check_metric(cls: type[Metric], zoo: Zoo | None = None, *, n: int = 6,
                 seed: int = 0) -> None:
    """Compute `cls()` on several sets of samples of `zoo` (default: `tiny_zoo()`), as the
    runner does, including the awkward ones: exact copies of train checkpoints, one sample,
    identical samples, and weights far from every checkpoint.

    Checks: a valid class and names; that it applies to the zoo's task (`applies_to`); every
    declared name returned, nothing undeclared; per-sample tensors [n] without NaN; summaries
    finite or None; figures valid (what the runner takes: wmplat.Figure, named, captioned, PNG
    within the size limit); the same inputs give the same values.
    """
    _check_class(cls, "metric")
    for attr in ("per_sample", "summary"):
        names = getattr(cls, attr)
        assert isinstance(names, tuple) and all(isinstance(x, str) and x for x in names), (
            f"metric {cls.name!r}: `{attr}` must be a tuple of names, got {names!r}")
    assert cls.per_sample or cls.summary, (
        f"metric {cls.name!r} declares no names: list what `compute` returns in `per_sample` "
        "and/or `summary`")
    zoo = _full_zoo(zoo)
    assert cls.applies_to(zoo.task), (
        f"metric {cls.name!r} does not apply to task {zoo.task.name!r} (its `applies_to`); "
        "check it on a zoo of a task it scores: check_metric(cls, tiny_zoo(MyTask()))")
    entry = Entry(cls.name, "metric", cls, UNDER_TEST)
    cache = BehaviourCache(zoo)
    for case, samples in _sample_sets(zoo, n, seed).items():
        values = _expect(lambda s=samples: _compute(entry, EvalContext(s, zoo, cache)),
                         f"metric {cls.name!r} on {case}")
        missing = sorted(set(cls.summary) - set(values.summary))
        assert not missing, (f"metric {cls.name!r} on {case}: summary {missing} declared but "
                             "not returned; return None where there is no value")
        again = _compute(entry, EvalContext(samples.clone(), zoo, cache))
        assert _same_values(values, again), (
            f"metric {cls.name!r} on {case}: two computations on the same samples differ; a "
            "metric must be deterministic")


def check_dataset(task: Task | type[Task], *, build: bool = False, seed: int = 0) -> None:
    """Check a task: its class and name, param spec, permutation groups (declared symmetry
    leaves behaviour unchanged), behaviour, quality and similarity on a tiny zoo of its
    architecture written and loaded in the zoo format, and its baseline settings. With
    `build`, also `build_zoo()` at its own size, written and loaded as `wmplat zoo build`
    does (use it where the build is cheap, or made small for tests).
    """
    cls = task if isinstance(task, type) else type(task)
    _check_class(cls, "dataset")
    task = _expect(lambda: task() if isinstance(task, type) else task,
                   f"dataset {cls.name!r}: the class cannot be created without arguments")
    spec = _expect(lambda: normalize_spec(task.param_spec),
                   f"dataset {task.name!r}: param_spec is not (name, shape) pairs")
    names = [name for name, _ in spec]
    assert spec and num_params(spec) > 0, f"dataset {task.name!r}: param_spec is empty"
    assert len(set(names)) == len(names), f"dataset {task.name!r}: param names repeat: {names}"
    assert all(d > 0 for _, shape in spec for d in shape), (
        f"dataset {task.name!r}: param_spec has an empty axis: {spec}")
    _expect(lambda: check_groups(task.permutation_groups, spec),
            f"dataset {task.name!r}: permutation_groups do not fit param_spec")
    zoo = _expect(lambda: tiny_zoo(task, runs=2, heldout=2, checkpoints=2, seed=seed),
                  f"dataset {task.name!r}: a tiny zoo of its architecture")
    _check_judging(task, zoo.train_weights())
    _check_symmetry(task, zoo.train_weights(), seed)
    _check_baseline_settings(task)
    if build:
        _check_build(task)


def _check_class(cls: Any, kind: str) -> None:
    base = HOOKS[f"register_{kind}s"][1]
    problem = _invalid(cls, kind, base)
    assert problem is None, problem
    if kind in ("method", "baseline"):
        assert cls.name not in RESERVED_NAMES, f"{kind} name {cls.name!r} is reserved"


def _full_zoo(zoo: Zoo | None) -> Zoo:
    if zoo is None:
        return tiny_zoo()
    assert isinstance(zoo, Zoo), (
        f"the checks need a whole wmplat.Zoo, both splits (such as tiny_zoo(...)), got "
        f"{type(zoo).__name__}; they give a method its train view themselves")
    return zoo


def _expect(compute: Callable[[], Any], what: str) -> Any:
    """compute(), or an AssertionError naming `what` and the error it raised."""
    try:
        return compute()
    except AssertionError:
        raise
    except WmplatError as exc:          # its message already says what is wrong
        raise AssertionError(f"{what}: {exc}") from exc
    except Exception as exc:
        raise AssertionError(f"{what}: {type(exc).__name__}: {exc}") from exc


def _check_unknown_option_refused(entry: Entry, config: dict[str, Any]) -> None:
    try:
        accepted = validate_config(entry, {**config, UNKNOWN_OPTION: 1})
        entry.cls(**accepted)
    except WmplatError as exc:
        assert isinstance(exc, ConfigError), (
            f"{entry.kind} {entry.name!r}: an unknown option raised {type(exc).__name__}; "
            "refuse it with a wmplat.ConfigError")
        return
    except Exception as exc:
        raise AssertionError(
            f"{entry.kind} {entry.name!r}: an unknown option raised {type(exc).__name__}: "
            f"{exc}; refuse it with a wmplat.ConfigError (a pydantic Config refuses unknown "
            "options with model_config = ConfigDict(extra='forbid'))") from exc
    raise AssertionError(
        f"{entry.kind} {entry.name!r} accepted the unknown option {UNKNOWN_OPTION!r}: a "
        "mistyped --set would be silently ignored; give its Config "
        "model_config = ConfigDict(extra='forbid')")


def _fit_and_sample(entry: Entry, config: dict[str, Any], zoo: Zoo, n: int, fit_seed: int,
                    sample_seeds: list[int], global_seed: int,
                    diagnose: bool = False) -> list[torch.Tensor]:
    """A fresh instance fitted as the runner does, then sampled with each seed in turn, the
    global random state set to `global_seed` first (restored afterwards), so that depending
    on it shows; with `diagnose`, its diagnostics checked after the last sample."""
    who = f"{entry.kind} {entry.name!r}"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(global_seed)
        method = _expect(lambda: entry.cls(**config), f"{who}: creating it")
        try:
            method.fit(zoo.without_heldout(), fit_seed)
        except ZooError as exc:
            if HELDOUT_REFUSED in str(exc):
                raise AssertionError(f"{who}: fit asked its zoo for the heldout split; a "
                                     "method learns from the train split only") from exc
            raise AssertionError(f"{who}: fit raised ZooError: {exc}") from exc
        except Exception as exc:
            raise AssertionError(f"{who}: fit raised {type(exc).__name__}: {exc}") from exc
        drawn = [_expect(lambda s=s: method.sample(n, s), f"{who}: sample") for s in sample_seeds]
        if diagnose and has_diagnostics(entry.cls):
            _expect(lambda: check_diagnostics(method.diagnostics(sample_seeds[-1]), who),
                    f"{who}: diagnostics")
    return [_checked_samples(samples, n, zoo, who) for samples in drawn]


def _checked_samples(samples: Any, n: int, zoo: Zoo, who: str) -> torch.Tensor:
    assert isinstance(samples, torch.Tensor) and samples.dtype == torch.float32, (
        f"{who}: sample returned "
        f"{samples.dtype if isinstance(samples, torch.Tensor) else type(samples).__name__}; "
        "return a float32 tensor [n, zoo.num_params]")
    return _expect(lambda: check_samples(samples, n, zoo.num_params, who), f"{who}: samples")


def _check_no_heldout_copies(who: str, samples: torch.Tensor, zoo: Zoo) -> None:
    """The runner's rule (docs/trust.md): a sample nearer to a heldout run than half the
    smallest distance between two heldout runs copies it."""
    heldout, groups = zoo.heldout_weights(), zoo.task.permutation_groups
    units = torch.tensor(independent_units(zoo.heldout_models()))
    between = heldout_l2(heldout, heldout, zoo.param_spec, groups, units, units)
    radius = copy_radius(between)
    distance = heldout_l2(samples, heldout, zoo.param_spec, groups)
    copies = is_copy(distance, radius) | (distance == 0)
    assert not copies.any(), (
        f"{who}: {int(copies.sum())} of {len(samples)} samples copy heldout models "
        f"(aligned L2 {float(distance.min()):.3g}, copy radius {radius:.3g}): it reached the "
        "heldout split, which the runner marks invalid; learn from the zoo it is given only")


def _sample_sets(zoo: Zoo, n: int, seed: int) -> dict[str, torch.Tensor]:
    train = zoo.train_weights()
    g = random_generator(seed)
    pick = torch.randint(len(train), (n,), generator=g)
    scale = train.std(dim=0, correction=0).clamp_min(1e-3)
    return {
        "jittered train checkpoints": train[pick] + 0.05 * scale * torch.randn(
            n, train.shape[1], generator=g),
        "exact copies of train checkpoints": train[pick],
        "a single sample": train[:1] + 0.05 * scale,
        "identical samples": train[:1].repeat(n, 1),
        "weights far from every checkpoint": 10 * torch.randn(n, train.shape[1], generator=g),
    }


def _same_values(a, b) -> bool:
    def same(x, y):
        if isinstance(x, torch.Tensor):
            return isinstance(y, torch.Tensor) and torch.equal(x, y)
        if x is None or y is None:
            return x is y
        return x == y or (math.isinf(x) and x == y)
    return (a.per_sample.keys() == b.per_sample.keys() and a.summary.keys() == b.summary.keys()
            and all(same(a.per_sample[k], b.per_sample[k]) for k in a.per_sample)
            and all(same(a.summary[k], b.summary[k]) for k in a.summary)
            and a.figures == b.figures)


def _check_judging(task: Task, weights: torch.Tensor) -> None:
    n = len(weights)
    who = f"dataset {task.name!r}"
    behaviour = _expect(lambda: task.behaviour(weights), f"{who}: behaviour")
    assert isinstance(behaviour, torch.Tensor) and behaviour.shape[:1] == (n,), (
        f"{who}: behaviour of {n} models must be a tensor [{n}, ...], got "
        f"{list(behaviour.shape) if isinstance(behaviour, torch.Tensor) else type(behaviour)}")
    assert torch.equal(task.behaviour(weights), behaviour), (
        f"{who}: behaviour of the same weights differs between two calls")
    assert torch.equal(task.behaviour(weights[1:2]), behaviour[1:2]), (
        f"{who}: the behaviour of a model depends on the models evaluated beside it")
    quality = _expect(lambda: task.quality(behaviour), f"{who}: quality")
    assert isinstance(quality, torch.Tensor) and tuple(quality.shape) == (n,) \
        and quality.is_floating_point(), (
        f"{who}: quality of {n} behaviours must be a float tensor [{n}], got "
        f"{list(quality.shape) if isinstance(quality, torch.Tensor) else type(quality)}")
    assert torch.isfinite(quality).all(), f"{who}: quality is not finite: {quality.tolist()}"
    sim = _expect(lambda: task.similarity(behaviour, behaviour[:2]), f"{who}: similarity")
    assert isinstance(sim, torch.Tensor) and tuple(sim.shape) == (n, 2), (
        f"{who}: similarity of [{n}, ...] and [2, ...] behaviours must be a tensor [{n}, 2], "
        f"got {list(sim.shape) if isinstance(sim, torch.Tensor) else type(sim)}")
    assert torch.isfinite(sim).all(), f"{who}: similarity is not finite: {sim.tolist()}"
    assert torch.allclose(sim.diagonal().double(), torch.ones(2, dtype=torch.float64)), (
        f"{who}: similarity of a behaviour with itself must be 1, got "
        f"{sim.diagonal().tolist()}")
    assert float(sim.max()) <= 1 + 1e-6, f"{who}: similarity above 1: {float(sim.max())}"


def _check_symmetry(task: Task, weights: torch.Tensor, seed: int) -> None:
    groups = task.permutation_groups
    if not groups:
        return
    spec = normalize_spec(task.param_spec)
    g = random_generator(seed)
    perms = {group.name: torch.randperm(group.size, generator=g).expand(len(weights), -1)
             for group in groups}
    params = {name: part for name, part in zip(
        [n for n, _ in spec], weights.split([math.prod(s) for _, s in spec], dim=1),
        strict=True)}
    permuted = torch.cat([_permute_param(params[name].reshape(len(weights), *shape), name,
                                         perms, groups).reshape(len(weights), -1)
                          for name, shape in spec], dim=1)
    assert torch.equal(task.behaviour(permuted), task.behaviour(weights)), (
        f"dataset {task.name!r}: permuting the units of its permutation_groups changed the "
        "behaviour; declare only reorderings that leave the function unchanged")


def _check_baseline_settings(task: Task) -> None:
    generators = load_plugins().generators
    for name, settings in task.baseline_settings.items():
        entry = _expect(lambda n=name: generators.get(n),
                        f"dataset {task.name!r}: baseline_settings names {name!r}")
        for setting in settings:
            _expect(lambda e=entry, s=setting: validate_config(e, s),
                    f"dataset {task.name!r}: baseline_settings[{name!r}] {setting!r}")


def _check_build(task: Task) -> None:
    import tempfile
    from pathlib import Path

    who = f"dataset {task.name!r}"
    assert task.can_build_zoo(), f"{who} has no build_zoo; check it without build=True"
    built = _expect(task.build_zoo, f"{who}: build_zoo")
    with tempfile.TemporaryDirectory(prefix="wmplat-contract-") as tmp:
        _expect(lambda: write_zoo(Path(tmp), task.name, task, built), f"{who}: its built zoo")
        zoo = _expect(lambda: load_zoo(Path(tmp), task), f"{who}: loading its built zoo")
    quality = task.quality(task.behaviour(zoo.train_weights()[:8]))
    recorded = torch.tensor([m.quality for m in zoo.train_models()[:8]], dtype=quality.dtype)
    assert torch.allclose(quality, recorded, atol=1e-5), (
        f"{who}: the quality its build_zoo records differs from what quality(behaviour()) "
        f"gives: {recorded.tolist()} vs {quality.tolist()}")
