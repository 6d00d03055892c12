"""wmplat: does a generative model of weights make new models, or memorize its training set?

The public API for plugins: `hookimpl`, `Method`, `Baseline`, `Metric`, `MetricValues`,
`EvalContext`, `Task`, `ClassifierTask`, `BuiltZoo`, `Zoo` and the errors.
"""

__version__ = "0.1.0"

from .errors import ConfigError, PluginError, ResultError, WmplatError, ZooError  # noqa: E402
from .hookspecs import hookimpl  # noqa: E402
from .method import Baseline, Method  # noqa: E402
from .metric import EvalContext, Metric, MetricValues  # noqa: E402
from .task import BuiltZoo, ClassifierTask, Task  # noqa: E402
from .zoo import Zoo  # noqa: E402

__all__ = [
    "Baseline", "BuiltZoo", "ClassifierTask", "ConfigError", "EvalContext", "Method", "Metric",
    "MetricValues", "PluginError", "ResultError", "Task", "WmplatError", "Zoo", "ZooError",
    "__version__", "hookimpl",
]
