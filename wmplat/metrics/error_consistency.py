"""`error_consistency`: for each sample, the highest Cohen's kappa between its pattern of
correct and wrong test answers and a training checkpoint's (Geirhos et al. 2020).

IoU of error sets grows with accuracy by chance alone; kappa subtracts the agreement two
independent classifiers of the same accuracies would reach, so 0 means no more alike than chance
and 1 means identical errors. It applies to classifiers only: on other tasks it is skipped, and
rows have null and no per-sample values.
"""

import torch

from ..engine.budget import chunk_size
from ..hookspecs import hookimpl
from ..metric import Metric, MetricValues
from ..task import ClassifierTask
from ._device import device_for
from ._reduce import median


def cohen_kappa(errors_a: torch.Tensor, errors_b: torch.Tensor) -> torch.Tensor:
    """Bool [na, m] and [nb, m] -> [na, nb] kappa over correct / wrong (1 where both are
    constant and equal, as for two perfect classifiers)."""
    a, b = errors_a.double(), errors_b.double()
    m = a.shape[1]
    both_wrong = a @ b.T
    pa, pb = a.mean(dim=1, keepdim=True), b.mean(dim=1)
    observed = (m - a.sum(1, keepdim=True) - b.sum(1) + 2 * both_wrong) / m
    expected = pa * pb + (1 - pa) * (1 - pb)
    kappa = (observed - expected) / (1 - expected)
    return torch.where(expected < 1, kappa, (observed == 1).double())


class ErrorConsistency(Metric):
    name = "error_consistency"
    per_sample = ("error_consistency",)
    summary = ("error_consistency_median",)

    @classmethod
    def applies_to(cls, task):
        return isinstance(task, ClassifierTask)

    def compute(self, ctx):
        task = ctx.task
        device = device_for(ctx, "errors")
        samples = task.errors(ctx.behaviour("samples").to(device))
        train = task.errors(ctx.behaviour("train").to(device))
        step = chunk_size(len(train))
        best = []
        for start in range(0, len(samples), step):
            kappa = cohen_kappa(samples[start:start + step], train)
            excluded = ctx.same_run("train", start, start + step).to(kappa.device)
            best.append(kappa.masked_fill(excluded, float("-inf")).max(dim=1).values.cpu())
        values = torch.cat(best) if best else torch.empty(0, dtype=torch.float64)
        return MetricValues(per_sample={"error_consistency": values},
                            summary={"error_consistency_median": median(values)})


@hookimpl
def register_metrics(register):
    register(ErrorConsistency)
