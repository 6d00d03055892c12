"""Stored rows aggregated over seeds: `wmplat leaderboard --aggregate seeds`.

Rows that agree in everything but their seed (zoo, revision, task, kind, method, config, sample
count, method version) are one group; each numeric metric gets its mean over the seeds where it
is not null, its sample standard deviation and a 95% Student-t interval of the mean, and the
verdicts are counted. A reference row (no seed) is a group of its own. Computed on reading,
never stored; the form is `schema.SeedAggregate` (docs/results.md, "Aggregated over seeds").
"""

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

from ..errors import ResultError
from ..measures import SUMMARIES
from ..schema import AGGREGATED_STANDARD, NO_VERDICT, VERDICTS, Result, SeedAggregate, parse_model
from .leaderboard import label, metric_names, metric_value, sort_rows

CONFIDENCE = 0.95


def group_key(row: Result) -> tuple:
    """What rows must share to be seeds of one aggregate."""
    return (row.zoo, row.zoo_revision, row.task, row.kind, row.method, row.config_hash,
            row.n_samples, row.method_version)


def aggregate_seeds(rows: Sequence[Result]) -> list[SeedAggregate]:
    """One aggregate per group, in the leaderboard's order of the groups' first rows; each
    reference row (no seed) is a group of its own."""
    groups: dict[tuple, list[Result]] = {}
    for i, row in enumerate(sort_rows(rows)):
        key = group_key(row) if row.seed is not None else ("reference", i)
        group = groups.setdefault(key, [])
        if any(r.seed == row.seed for r in group):
            raise ResultError(f"two stored rows of {label(row)} on zoo {row.zoo} (revision "
                              f"{row.zoo_revision}, n {row.n_samples}) have seed {row.seed}: "
                              "the results folder holds one result twice; remove a copy")
        group.append(row)
    return [aggregate_group(group) for group in groups.values()]


def numeric_metrics(rows: Sequence[Result]) -> list[str]:
    """Every metric of `rows` that is one number (not an interval such as novelty_auc_ci)."""
    return [m for m in metric_names(rows) if m not in SUMMARIES or
            SUMMARIES[m].format == "number"]


def aggregate_group(rows: Sequence[Result]) -> SeedAggregate:
    first = rows[0]
    seeds = sorted(r.seed for r in rows) if first.seed is not None else [None]
    names = [m for m in numeric_metrics(rows) if m in AGGREGATED_STANDARD
             or any(m in (r.metrics.model_extra or {}) for r in rows)]
    source = f"the aggregate over seeds of {label(first)} on zoo {first.zoo}"
    for name in names:
        if bad := [r for r in rows if not math.isfinite(metric_value(r, name) or 0.0)]:
            raise ResultError(f"{source}: {name} of seed {bad[0].seed} is "
                              f"{metric_value(bad[0], name)}; a stored value must be a finite "
                              "number or null")
    aggregate = dict(
        method=first.method, kind=first.kind, method_version=first.method_version,
        zoo=first.zoo, zoo_revision=first.zoo_revision, task=first.task,
        n_samples=first.n_samples, config=first.config, config_hash=first.config_hash,
        n_seeds=len(rows), seeds=seeds,
        metrics={m: summarise([v for r in rows if (v := metric_value(r, m)) is not None])
                 for m in names},
        verdicts=verdict_counts(rows))
    # finite values can still sum past the largest float
    return parse_model(SeedAggregate, aggregate, source, ResultError)


def summarise(values: Sequence[float]) -> dict | None:
    """Mean, sample standard deviation and the 95% t-interval mean ± t·s/√n; None for no
    values; with one value no spread is known, so std and the interval are None."""
    n = len(values)
    if n == 0:
        return None
    if all(v == values[0] for v in values):
        # exactly the value, not a mean that rounding moved by an ulp
        mean, std = float(values[0]), 0.0
    else:
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported after
            mean, std = float(np.mean(values)), float(np.std(values, ddof=1))
    if n == 1:
        return {"mean": mean, "std": None, "n": 1, "ci": None}
    half = t_quantile(n - 1) * std / math.sqrt(n)
    return {"mean": mean, "std": std, "n": n, "ci": (mean - half, mean + half)}


def t_quantile(dof: int) -> float:
    """The two-sided 95% quantile of Student's t with `dof` degrees of freedom."""
    from scipy.stats import t

    return float(t.ppf(1 - (1 - CONFIDENCE) / 2, dof))


def verdict_counts(rows: Sequence[Result]) -> dict[str, int]:
    """{verdict: how many seeds}, most common first (ties in the schema's order); a row without
    a verdict counts as "none"."""
    counts = Counter(r.verdict or NO_VERDICT for r in rows)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], VERDICTS.index(kv[0]))))
