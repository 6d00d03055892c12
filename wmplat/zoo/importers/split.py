"""Heldout runs: a seeded draw of a fraction of the runs, or the runs given."""

import random

from ...errors import ConfigError


def heldout_runs(runs: list[int], fraction: float | None, given: list[int] | None,
                 seed: int) -> list[int]:
    """The runs of the heldout split; at least one run stays on each side."""
    if (fraction is None) == (given is None):
        raise ConfigError("give exactly one of --heldout FRACTION and --heldout-runs LIST")
    if len(runs) < 2:
        raise ConfigError(f"the source holds {len(runs)} run; a zoo is split by training run "
                          "and needs at least two: give the heldout runs from a second folder "
                          "with --heldout-from DIR")
    if given is not None:
        if unknown := sorted(set(given) - set(runs)):
            raise ConfigError(f"--heldout-runs: no run {unknown[0]} in the source "
                              f"(runs: {_some(runs)})")
        chosen = sorted(set(given))
    else:
        if not 0 < fraction < 1:
            raise ConfigError(f"--heldout {fraction}: the fraction of runs held out must be "
                              "between 0 and 1")
        k = min(len(runs) - 1, max(1, round(fraction * len(runs))))
        chosen = sorted(random.Random(seed).sample(sorted(runs), k))
    if len(chosen) == len(runs):
        raise ConfigError("--heldout-runs names every run; leave some to train on")
    return chosen


def parse_runs(text: str | None) -> list[int] | None:
    """`3,7,12` -> [3, 7, 12]."""
    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--heldout-runs {text!r}: write run numbers separated by commas, "
                          "e.g. 3,7,12") from None


def _some(runs: list[int]) -> str:
    shown = ", ".join(str(r) for r in sorted(runs)[:10])
    return shown + (", ..." if len(runs) > 10 else "")
