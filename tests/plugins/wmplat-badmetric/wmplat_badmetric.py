"""A metric that breaks the contract: its summary is NaN."""

import wmplat


class NanSummary(wmplat.Metric):
    name = "nan-summary"
    summary = ("nan_summary",)

    def compute(self, ctx):
        return wmplat.MetricValues(summary={"nan_summary": float("nan")})


@wmplat.hookimpl
def register_metrics(register):
    register(NanSummary)
