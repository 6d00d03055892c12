"""Copies across the heldout boundary: samples that copy a heldout model, and zoos whose heldout
split copies its train split.

A method must never see the heldout runs. `TrainZoo` keeps them out of its API, but nothing in
one process stops a plugin from reading the zoo's files or walking the interpreter's objects,
so every row is also compared with the heldout runs (docs/trust.md):

    heldout_l2(g)  distance from sample g to its nearest heldout checkpoint, after alignment
                   (the task's permutation groups; plain L2 without any)
    radius         half the smallest distance between checkpoints of two different heldout runs
                   (from the `fresh` row: each heldout run against the other runs)

A sample with heldout_l2 < radius is a *heldout copy*. Balls of that radius around the
checkpoints of different heldout runs do not overlap, so such a sample is nearer to one heldout
run than that run is to any other: a copy or a near-copy of it, never what an independent
training gives. A row with any heldout copy is `invalid`.

At load, the same rule in plain L2 refuses a zoo whose heldout split holds copies of train
checkpoints: its splits are not independent, and every copy of them would read `novel`.
"""

import torch

from ..engine.neighbours import aligned_neighbours
from ..errors import ZooError
from ..zoo.params import ParamSpec


def heldout_l2(samples: torch.Tensor, heldout: torch.Tensor, spec: ParamSpec, groups,
               own_units: torch.Tensor | None = None,
               heldout_units: torch.Tensor | None = None) -> torch.Tensor:
    """[n] float64: each sample's aligned distance to its nearest heldout checkpoint, leaving
    out the checkpoints of the sample's own unit (`own_units[i]`) when the samples are heldout
    runs themselves."""
    exclude = None
    if own_units is not None:
        exclude = lambda i: heldout_units == own_units[i]  # noqa: E731
    return aligned_neighbours(samples, heldout, spec, groups, exclude=exclude, k=1).aligned_l2


def copy_radius(*nearest: torch.Tensor) -> float:
    """Half the smallest of the given distances between independent runs; 0 (nothing can be
    flagged) when there are none."""
    smallest = min((float(d.min()) for d in nearest if len(d)), default=float("inf"))
    return smallest / 2 if smallest < float("inf") else 0.0


def train_separation(train: torch.Tensor, units: torch.Tensor, finals: torch.Tensor,
                     final_units: torch.Tensor, heldout: torch.Tensor, spec: ParamSpec,
                     groups) -> tuple[torch.Tensor, torch.Tensor]:
    """Aligned distances from each train run's final checkpoint to the nearest checkpoint of
    another train run, and to the nearest heldout checkpoint: how close independent runs of
    this zoo come to one another besides the heldout runs themselves."""
    exclude = lambda i: units == final_units[i]  # noqa: E731
    to_train = aligned_neighbours(finals, train, spec, groups, exclude=exclude, k=1).aligned_l2
    return to_train, heldout_l2(finals, heldout, spec, groups)


def is_copy(distance: torch.Tensor, radius: float) -> torch.Tensor:
    return distance.double() < radius


def check_independent_splits(manifest, weights: torch.Tensor, heldout_units: list[int],
                             train_units: list[int], source: str) -> None:
    """Refuse a zoo whose heldout checkpoints copy train checkpoints: equal, or in plain L2
    within half the smallest distance between two runs of one split. `heldout_units`,
    `train_units`: the independent unit of each model of the split, in manifest order."""
    from ..metrics.min_l2 import nearest_l2  # a metric module imports wmplat.zoo, which calls this

    held = [i for i, m in enumerate(manifest.models) if m.split == "heldout"]
    train = [i for i, m in enumerate(manifest.models) if m.split == "train"]
    h, t = weights[held], weights[train]
    radius = copy_radius(nearest_l2(h, h, _same(torch.tensor(heldout_units))),
                         nearest_l2(t, t, _same(torch.tensor(train_units))))
    to_train = nearest_l2(h, t)
    copies = (to_train < radius) | (to_train == 0)
    if not copies.any():
        return
    names = []
    for i in copies.nonzero().flatten().tolist()[:5]:
        nearest = int((t.double() - h[i].double()).norm(dim=1).argmin())
        names.append(f"{manifest.models[held[i]].id} ~ {manifest.models[train[nearest]].id} "
                     f"(L2 {float(to_train[i]):.3g})")
    more = f" and {int(copies.sum()) - len(names)} more" if copies.sum() > len(names) else ""
    raise ZooError(f"{source}: {int(copies.sum())} heldout models copy train checkpoints: "
                   f"{', '.join(names)}{more}; closer than half the smallest distance between "
                   f"two runs of one split ({radius:.3g}), so the splits are not independent. "
                   "Split the zoo by independently trained runs")


def _same(units: torch.Tensor):
    """excluded(start, stop) for `nearest_l2`: pairs of checkpoints of one unit."""
    return lambda a, b: units[a:b, None] == units[None, :]
