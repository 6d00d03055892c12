"""The shape metrics of HyperDiffusion and Zeng et al., on `shapes2d-field` zoos only (on a
zoo of another task they do not apply: wmplat skips them and their values are null).

Per sample: `chamfer_to_train`, the least Chamfer distance to a train field's shape (novelty:
low means near a training shape), and `chamfer_to_test`, the least to a test shape (quality:
low means near a shape of the family). Set-level, against the test shapes, as HyperDiffusion
computes them with as many samples as reference shapes (the first k = min(n, test shapes) of
each): `mmd`, the mean over reference shapes of the least CD to a sample (lower is better);
`cov`, the share of reference shapes that are some sample's nearest (higher is better); `nna`,
the leave-one-out 1-nearest-neighbour accuracy over samples and references together (0.5 when
the samples cannot be told from the references, 1 when they always can).
"""

import math

import torch

import wmplat

from . import figures
from .task import Shapes2dField


class ShapeMetric(wmplat.Metric):
    @classmethod
    def applies_to(cls, task) -> bool:
        return isinstance(task, Shapes2dField)


def _median(values: torch.Tensor) -> float | None:
    if not len(values):
        return None
    value = float(values.double().quantile(0.5))
    return value if math.isfinite(value) else None


class ChamferToTrain(ShapeMetric):
    """Also draws the row's figures (figures.py): the first samples beside their nearest train
    shapes, and the histogram of these values against the heldout fields' own."""

    name = "chamfer_to_train"
    per_sample = ("chamfer_to_train",)
    summary = ("chamfer_to_train_median",)

    def compute(self, ctx):
        samples, train = ctx.behaviour("samples"), ctx.behaviour("train")
        cd = ctx.task.chamfer(samples, train).masked_fill(
            ctx.same_run("train", 0, len(samples)), math.inf)
        values, nearest = _least(cd)
        # the reference: heldout fields (never of a train run) to the train fields
        reference, _ = _least(ctx.task.chamfer(ctx.behaviour("heldout"), train))
        return wmplat.MetricValues(
            per_sample={"chamfer_to_train": values},
            summary={"chamfer_to_train_median": _median(values)},
            figures=[_nearest_figure(ctx, samples, train, values, nearest),
                     figures.cd_histogram(values, reference)])


def _least(cd: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """CD [n, m] -> each row's least value and its column (inf and -1 when m is 0)."""
    if not cd.shape[1]:
        return (torch.full((len(cd),), math.inf, dtype=torch.float64),
                torch.full((len(cd),), -1, dtype=torch.long))
    return cd.min(dim=1)


def _nearest_figure(ctx, samples, train, values, nearest) -> wmplat.Figure:
    k = min(len(samples), figures.GRID_SAMPLES) if len(train) else 0
    ids = [m.id for m in ctx.zoo.train_models()]
    picked = nearest[:k]
    return figures.nearest_shapes(ctx.task.shapes(samples)[:k],
                                  ctx.task.shapes(train)[picked], values[:k],
                                  [ids[j] for j in picked.tolist()])


class ChamferToTest(ShapeMetric):
    name = "chamfer_to_test"
    per_sample = ("chamfer_to_test",)
    summary = ("chamfer_to_test_median",)

    def compute(self, ctx):
        values = ctx.task.chamfer_to_test(ctx.behaviour("samples"))
        return wmplat.MetricValues(per_sample={"chamfer_to_test": values},
                                   summary={"chamfer_to_test_median": _median(values)})


def minimum_matching_distance(cd: torch.Tensor) -> float:
    """CD [samples, references] -> the mean over references of the least CD to a sample."""
    return float(cd.amin(dim=0).mean())


def coverage(cd: torch.Tensor) -> float:
    """CD [samples, references] -> the share of references that are some sample's nearest."""
    return len(cd.argmin(dim=1).unique()) / cd.shape[1]


def one_nn_accuracy(samples: torch.Tensor, between: torch.Tensor,
                    references: torch.Tensor) -> float:
    """CD among samples [n, n], samples to references [n, m], among references [m, m] -> the
    share of all n + m shapes whose nearest other shape (ties: the first) is of its own set."""
    full = torch.cat([torch.cat([samples, between], dim=1),
                      torch.cat([between.T, references], dim=1)])
    full.fill_diagonal_(math.inf)
    is_sample = torch.arange(len(full)) < len(samples)
    return float((is_sample[full.argmin(dim=1)] == is_sample).double().mean())


def _balanced(ctx) -> tuple[torch.Tensor, int]:
    """CD [k, k] of the first k samples to the first k test shapes, and k."""
    cd = ctx.task.test_chamfer(ctx.behaviour("samples"))
    k = min(cd.shape)
    return cd[:k, :k], k


class MinimumMatching(ShapeMetric):
    name = "mmd"
    summary = ("mmd",)

    def compute(self, ctx):
        cd, k = _balanced(ctx)
        return wmplat.MetricValues(summary={"mmd": minimum_matching_distance(cd) if k else None})


class Coverage(ShapeMetric):
    name = "cov"
    summary = ("cov",)

    def compute(self, ctx):
        cd, k = _balanced(ctx)
        return wmplat.MetricValues(summary={"cov": coverage(cd) if k else None})


class NearestNeighbour(ShapeMetric):
    name = "nna"
    summary = ("nna",)

    def compute(self, ctx):
        between, k = _balanced(ctx)
        if k < 2:
            return wmplat.MetricValues(summary={"nna": None})
        samples = ctx.task.chamfer_within(ctx.behaviour("samples")[:k])
        references = ctx.task.test_chamfer_within()[:k, :k]
        return wmplat.MetricValues(
            summary={"nna": one_nn_accuracy(samples, between, references)})
