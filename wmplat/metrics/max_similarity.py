"""`max_similarity`: for each sample, its highest behavioural similarity to any training
checkpoint (for classifiers, the IoU of the sets of misclassified test examples). This is the
paper's novelty measure: 1 means the sample errs exactly where some training checkpoint errs."""

import torch

from ..hookspecs import hookimpl
from ..metric import Metric, MetricValues
from ._reduce import chunk_size, median


class MaxSimilarity(Metric):
    name = "max_similarity"
    per_sample = ("max_similarity",)
    summary = ("max_similarity_median",)

    def compute(self, ctx):
        samples, train = ctx.behaviour("samples"), ctx.behaviour("train")
        best = []
        for start in range(0, len(samples), chunk_size(len(train), 4)):
            stop = start + chunk_size(len(train), 4)
            sim = ctx.task.similarity(samples[start:stop], train)
            sim = sim.masked_fill(ctx.same_run("train", start, stop), float("-inf"))
            best.append(sim.max(dim=1).values)
        values = torch.cat(best).float() if best else torch.empty(0)
        return MetricValues(per_sample={"max_similarity": values},
                            summary={"max_similarity_median": median(values)})


@hookimpl
def register_metrics(register):
    register(MaxSimilarity)
