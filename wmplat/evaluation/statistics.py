"""Calibrated statistics: every sample judged against the zoo's heldout runs, the null.

The heldout runs are independent trainings no method has seen, scored exactly like samples, so
they show what a genuinely new model looks like. Each test below asks whether a sample's value
is lower than the heldout runs' values reach, by a conformal p-value
    p = (1 + #{heldout runs h: x(h) <= x(sample)}) / (m + 1)   (m heldout runs)
flagged when p <= ALPHA. A fresh model is exchangeable with the heldout runs, so each test flags
it with probability at most ALPHA whatever the distribution: no threshold is tuned. When the
samples are the heldout runs themselves (the `fresh` row), each is compared with the others.
docs/metrics.md defines every statistic and names the test that calibrates it.
"""

from dataclasses import dataclass

import torch

ALPHA = 0.05
# With m heldout runs the smallest p-value is 1/(m+1): below this many, no test can flag.
MIN_HELDOUT_RUNS = round(1 / ALPHA) - 1
NO_POWER = "no-power"   # the verdict in its place (docs/metrics.md)
BOOTSTRAP_ROUNDS = 1000
BOOTSTRAP_SEED = 0
CATEGORIES = ("novel", "interpolates", "memorizes", "degraded")
# The verdict is the most common category; ties go to the less novel one.
TIE_ORDER = ("degraded", "memorizes", "interpolates", "novel")


@dataclass
class Judgement:
    category: torch.Tensor                 # [n] int: index into CATEGORIES
    summary: dict[str, object]


def judge(values: dict[str, torch.Tensor], null: dict[str, torch.Tensor],
          leave_one_out: bool = False) -> Judgement:
    """Per-sample values of the samples and of the heldout runs -> categories and statistics.

    `leave_one_out`: the samples are the heldout runs, in the same order.
    """
    n = _count(values)
    low = lambda name: _flag(values.get(name), null.get(name), leave_one_out, n)  # noqa: E731
    distance = "aligned_l2" if "aligned_l2" in values else "min_l2"
    ratio_values, ratio_null = _hull_ratio(values, distance), _hull_ratio(null, distance)
    flags = {
        "degraded": low("accuracy"),
        "near_one": low(distance),
        "near_hull": low("hull_residual"),
        "hull_explains": _flag(ratio_values, ratio_null, leave_one_out, n),
        "same_errors": _flag(_neg(values.get("max_similarity")),
                             _neg(null.get("max_similarity")), leave_one_out, n),
    }
    category = _categorise(flags, n)
    compared = _count(null) - (1 if leave_one_out else 0)
    summary = {
        "replica_rate": _rate(category, "memorizes"),
        "interpolation_rate": _rate(category, "interpolates"),
        "degraded_rate": _rate(category, "degraded"),
        "novel_good_rate": _rate(category, "novel"),
        "verdict": verdict(category),
    }
    if compared < MIN_HELDOUT_RUNS and n:
        # no test can flag anything: "novel" would be the absence of a test, not its outcome
        summary.update(verdict=NO_POWER, novel_good_rate=None)
    summary.update(novelty_auc(values.get("max_similarity"), null.get("max_similarity"),
                               leave_one_out))
    return Judgement(category, summary)


def _count(values: dict[str, torch.Tensor]) -> int:
    return len(next(iter(values.values()))) if values else 0


def _neg(x):
    return None if x is None else -x


def _flag(x, ref, leave_one_out: bool, n: int) -> torch.Tensor:
    """True where x is lower than the null reaches at level ALPHA (conformal p-value)."""
    if x is None or ref is None or len(ref) == 0:
        return torch.zeros(n, dtype=torch.bool)
    x, ref = x.double(), ref.double()
    below = (ref.unsqueeze(0) <= x.unsqueeze(1)).sum(dim=1)
    m = len(ref)
    if leave_one_out:
        below, m = below - 1, m - 1   # each run's own value is always <= itself
    p = (1 + below) / (m + 1)
    return p <= ALPHA


def _hull_ratio(values, distance):
    """hull_residual / distance to the nearest checkpoint: near 0 when a combination of
    checkpoints explains the sample far better than any one does; an exact copy counts as 1."""
    if "hull_residual" not in values or distance not in values:
        return None
    d = values[distance].double()
    return torch.where(d > 0, values["hull_residual"].double() / d.clamp(min=1e-300),
                       torch.ones_like(d))


def _categorise(flags: dict[str, torch.Tensor], n: int) -> torch.Tensor:
    """The decision list of docs/metrics.md, first match wins:
    memorizes: near one training checkpoint, and no combination of checkpoints explains it
    better; interpolates: near the checkpoints or their hull otherwise; degraded: worse than
    the heldout runs; memorizes: as good, but errs like a training checkpoint though far from
    all in weights; novel: none of these."""
    near_one, explains = flags["near_one"], flags["hull_explains"]
    rules = [                         # highest priority first
        ("memorizes", near_one & ~explains),
        ("interpolates", near_one | flags["near_hull"] | explains),
        # before same_errors: a bad model shares errors with poor checkpoints by being wrong
        # more often (IoU grows with the error rate), which is no evidence of copying
        ("degraded", flags["degraded"]),
        ("memorizes", flags["same_errors"]),
    ]
    category = torch.full((n,), CATEGORIES.index("novel"))
    for name, hit in reversed(rules):  # apply lowest priority first, so higher ones overwrite
        category[hit] = CATEGORIES.index(name)
    return category


def _rate(category: torch.Tensor, name: str) -> float | None:
    if len(category) == 0:
        return None
    return float((category == CATEGORIES.index(name)).double().mean())


def verdict(category: torch.Tensor) -> str | None:
    if len(category) == 0:
        return None
    counts = {name: int((category == CATEGORIES.index(name)).sum()) for name in CATEGORIES}
    return max(TIE_ORDER, key=lambda name: (counts[name], -TIE_ORDER.index(name)))


def novelty_auc(similarity, null, leave_one_out: bool) -> dict[str, object]:
    """Mann-Whitney P(max_similarity(sample) < max_similarity(heldout run)), ties one half,
    with a 95% percentile bootstrap interval that resamples samples and heldout runs."""
    if similarity is None or null is None or len(similarity) == 0 or len(null) < 2:
        return {"novelty_auc": None, "novelty_auc_ci": None}
    s, h = similarity.double(), null.double()
    wins = (s.unsqueeze(1) < h.unsqueeze(0)).double() + 0.5 * (s.unsqueeze(1) == h.unsqueeze(0))
    valid = torch.ones_like(wins, dtype=torch.bool)
    if leave_one_out:
        valid.fill_diagonal_(False)
    wins = wins * valid
    # A bootstrap round weighs each sample and each heldout run by how often it was drawn, so
    # the round's AUC is (c W d) / (c V d) for draw counts c, d: all rounds in two products.
    g = torch.Generator().manual_seed(BOOTSTRAP_SEED)
    c = _draw_counts(len(s), g)
    d = _draw_counts(len(h), g)
    boot = ((c @ wins) * d).sum(dim=1) / ((c @ valid.double()) * d).sum(dim=1).clamp(min=1)
    low, high = boot.quantile(torch.tensor([0.025, 0.975], dtype=torch.float64))
    return {"novelty_auc": float(wins[valid].mean()),
            "novelty_auc_ci": (float(low), float(high))}


def _draw_counts(size: int, g: torch.Generator) -> torch.Tensor:
    """[BOOTSTRAP_ROUNDS, size]: how often each item is drawn in each round of `size` draws
    with replacement."""
    draws = torch.randint(size, (BOOTSTRAP_ROUNDS, size), generator=g)
    counts = torch.zeros(BOOTSTRAP_ROUNDS, size, dtype=torch.float64)
    return counts.scatter_add_(1, draws, torch.ones_like(draws, dtype=torch.float64))
