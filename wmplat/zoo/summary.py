"""What `wmplat zoo info` prints about a zoo: its splits, task, symmetry and origin."""

import warnings
from collections import Counter

from ..evaluation.statistics import MIN_HELDOUT_RUNS
from ..schema import ModelRecord
from .format import Zoo, independent_units


def summary_lines(zoo: Zoo) -> list[str]:
    m = zoo.manifest
    lines = [split_line(split, [x for x in m.models if x.split == split])
             for split in ("train", "heldout")]
    lines += [f"zoo      {m.name} (revision {zoo.revision})", f"task     {m.task}",
              f"arch     {m.architecture}", f"params   {zoo.num_params:,}",
              f"symmetry {symmetry_line(zoo)}", f"license  {m.license}"]
    if "imported_from" in m.provenance:
        p, split = m.provenance, m.provenance.get("split", {})
        how = (f"{split['fraction']} of the runs held out, drawn with seed {split.get('seed')}"
               if "fraction" in split else f"heldout runs from {split['heldout_from']}"
               if "heldout_from" in split else "heldout runs given")
        lines.append(f"source   imported ({p.get('format')}) from {p['imported_from']}, {how}")
    return lines


def split_line(split: str, models: list[ModelRecord]) -> str:
    quality = [x.quality for x in models]
    per_run = Counter(x.run for x in models).values()
    low, high = min(per_run), max(per_run)
    each = f"{low}" if low == high else f"{low}-{high}"
    return (f"{split:8s} {len(models)} models from {len(per_run)} runs ({each} per run), "
            f"quality {min(quality):.3f}-{max(quality):.3f} "
            f"(mean {sum(quality) / len(quality):.3f})")


def symmetry_line(zoo: Zoo) -> str:
    groups = zoo.task.permutation_groups
    if not groups:
        return "none (distances are not aligned)"
    found = ", ".join(f"{g.name} ({g.size} units)" for g in groups)
    return f"{len(groups)} permutation group{'s' if len(groups) > 1 else ''}: {found}"


def heldout_units(zoo: Zoo) -> int:
    """The independent heldout units the conformal tests compare with: runs, or checkpoints
    when the heldout split is one run."""
    return len(set(independent_units(zoo.heldout_models())))


def warn_if_powerless(zoo: Zoo) -> None:
    units = heldout_units(zoo)
    if units < MIN_HELDOUT_RUNS:
        warnings.warn(f"zoo {zoo.name!r} has {units} heldout runs: with m runs the smallest "
                      f"p-value is 1/(m+1), so below {MIN_HELDOUT_RUNS} no sample can be "
                      "flagged and evaluations read no-power instead of novel "
                      "(docs/metrics.md)", stacklevel=2)
