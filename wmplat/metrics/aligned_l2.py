"""`aligned_l2` and `hull_residual`: weight-space distances that respect permutation symmetry.

aligned_l2: for each sample, the L2 distance to its nearest training checkpoint after the
checkpoint's hidden units are permuted to best match the sample (the task's permutation
groups; without any, the plain distance). hull_residual: the distance from the sample to the
convex hull of its K nearest aligned checkpoints: near zero for averages and interpolations of
training checkpoints, as large as aligned_l2 for a checkpoint plus noise.
"""

from ..engine.neighbours import aligned_neighbours
from ..hookspecs import hookimpl
from ..metric import Metric, MetricValues
from ._reduce import median


class AlignedL2(Metric):
    name = "aligned_l2"
    per_sample = ("aligned_l2", "hull_residual")
    summary = ("aligned_l2_median", "hull_residual_median")

    def compute(self, ctx):
        found = aligned_neighbours(
            ctx.weights("samples"), ctx.weights("train"), ctx.zoo.param_spec,
            ctx.task.permutation_groups, exclude=lambda i: ctx.same_run("train", i, i + 1)[0])
        return MetricValues(
            per_sample={"aligned_l2": found.aligned_l2, "hull_residual": found.hull_residual},
            summary={"aligned_l2_median": median(found.aligned_l2),
                     "hull_residual_median": median(found.hull_residual)})


@hookimpl
def register_metrics(register):
    register(AlignedL2)
