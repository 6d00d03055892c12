"""wmplat: does a generative model of weights make new models, or memorize its training set?

The public API for plugins is `_EXPORTS` below, with `wmplat.plugins.register` and the test kit
`wmplat.testing`; docs/plugins.md documents every name (its "Reference", kept equal to this
list by tests/test_plugin_docs.py). Names are imported on first use, so commands that never
touch torch (`wmplat --help`, `wmplat leaderboard`) start fast.
"""

import importlib

from . import _moved

__version__ = "0.4.0"
_moved.install()

_EXPORTS = {
    "hookimpl": "hookspecs", "Method": "method", "Baseline": "method", "Diagnostics": "method",
    "Metric": "metric", "Figure": "figure",
    "MetricValues": "metric", "EvalContext": "metric", "Task": "task",
    "ClassifierTask": "task", "BuiltZoo": "task", "ShippedZoo": "task", "Zoo": "zoo.format",
    "TrainZoo": "zoo.train_view", "TaskView": "zoo.train_view", "WmplatError": "errors",
    "PluginError": "errors", "ZooError": "errors", "ConfigError": "errors",
    "ResultError": "errors", "HubError": "errors", "PermutationGroup": "engine.alignment",
    "mlp_permutation_groups": "engine.alignment",
    # helpers for plugins: seeded randomness, parameters by name, batched training, progress
    "random_generator": "method", "param_mask": "zoo.params", "train_stacked": "tasks.training",
    "epoch_steps": "tasks.training", "train_mlps": "tasks.mlp", "init_mlp": "tasks.mlp",
    "mlp_forward": "tasks.mlp", "mlp_spec": "tasks.mlp", "status": "engine.progress",
    "progress_bar": "engine.progress", "blocks": "engine.budget", "step_size": "engine.budget",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'wmplat' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
