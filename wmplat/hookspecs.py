"""The plugin contract: four hooks, each handed a `register` callable."""

import pluggy

hookspec = pluggy.HookspecMarker("wmplat")
hookimpl = pluggy.HookimplMarker("wmplat")


@hookspec
def register_methods(register):
    """Register weight-generation methods: register(MethodClass)."""


@hookspec
def register_baselines(register):
    """Register baselines, methods that need no learning: register(BaselineClass)."""


@hookspec
def register_datasets(register):
    """Register tasks (data, architecture, training, behaviour): register(TaskClass)."""


@hookspec
def register_metrics(register):
    """Register metrics that score sampled models: register(MetricClass)."""
