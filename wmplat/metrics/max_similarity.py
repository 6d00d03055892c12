"""`max_similarity`: for each sample, its highest behavioural similarity to any training
checkpoint (for classifiers, the IoU of the sets of misclassified test examples). This is the
paper's novelty measure: 1 means the sample errs exactly where some training checkpoint errs."""

import torch

from ..engine.budget import blocks, chunk_size
from ..hookspecs import hookimpl
from ..metric import Metric, MetricValues
from ._device import device_for
from ._reduce import median

# Scratch per (sample, checkpoint) pair: a classifier's similarity holds two float32 matrices,
# plus the same-run mask; other tasks' similarities get room to spare.
BYTES_PER_PAIR = 16


class MaxSimilarity(Metric):
    name = "max_similarity"
    per_sample = ("max_similarity",)
    summary = ("max_similarity_median",)

    def compute(self, ctx):
        device = device_for(ctx, "similarity", "errors")
        samples, train = ctx.behaviour("samples").to(device), ctx.behaviour("train").to(device)
        values = torch.empty(len(samples))
        for start, stop in blocks(len(samples), chunk_size(len(train), BYTES_PER_PAIR)):
            sim = ctx.task.similarity(samples[start:stop], train)
            excluded = ctx.same_run("train", start, stop).to(sim.device)
            if excluded.any():
                sim = sim.masked_fill(excluded, float("-inf"))
            values[start:stop] = sim.max(dim=1).values
        return MetricValues(per_sample={"max_similarity": values},
                            summary={"max_similarity_median": median(values)})


@hookimpl
def register_metrics(register):
    register(MaxSimilarity)
