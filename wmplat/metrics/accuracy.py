"""`accuracy`: each sampled model's quality on the task's test set (accuracy for classifiers)."""

from ..hookspecs import hookimpl
from ..metric import Metric, MetricValues


class Accuracy(Metric):
    name = "accuracy"
    per_sample = ("accuracy",)
    summary = ("accuracy_mean", "accuracy_max")

    def compute(self, ctx):
        quality = ctx.task.quality(ctx.behaviour("samples")).float()
        return MetricValues(
            per_sample={"accuracy": quality},
            summary={"accuracy_mean": float(quality.mean()) if len(quality) else None,
                     "accuracy_max": float(quality.max()) if len(quality) else None})


@hookimpl
def register_metrics(register):
    register(Accuracy)
