"""`min_l2`: for each sample, the L2 distance in weight space to its nearest training checkpoint.

Exact: float64 distances through the norm expansion pick a few candidates, and the distance to
each candidate is then computed as a direct difference. (The expansion alone, in float32, is
badly wrong for near-duplicates, which is exactly the memorization case.)
"""

import torch

from ..hookspecs import hookimpl
from ..metric import Metric, MetricValues
from ._reduce import chunk_size, median

CANDIDATES = 8


class MinL2(Metric):
    name = "min_l2"
    per_sample = ("min_l2",)
    summary = ("min_l2_median",)

    def compute(self, ctx):
        samples, train = ctx.weights("samples").double(), ctx.weights("train").double()
        train_sq = (train * train).sum(dim=1)
        step = chunk_size(len(train))
        out = []
        for start in range(0, len(samples), step):
            chunk = samples[start:start + step]
            d2 = (chunk * chunk).sum(dim=1, keepdim=True) + train_sq - 2 * chunk @ train.T
            d2 = d2.masked_fill(ctx.same_run("train", start, start + step), float("inf"))
            k = min(CANDIDATES, len(train))
            candidates = d2.topk(k, dim=1, largest=False).indices
            exact = (chunk.unsqueeze(1) - train[candidates]).norm(dim=2)
            exact = exact.masked_fill(d2.gather(1, candidates).isinf(), float("inf"))
            out.append(exact.min(dim=1).values)
        values = torch.cat(out) if out else torch.empty(0, dtype=torch.float64)
        return MetricValues(per_sample={"min_l2": values},
                            summary={"min_l2_median": median(values)})


@hookimpl
def register_metrics(register):
    register(MinL2)
