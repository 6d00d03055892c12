"""Loading plugins: the built-ins and every entry point in group `wmplat`, through the same hooks.

Each plugin is loaded once, on its own: one that fails to import or registers something invalid
is recorded with its error and reported as a warning, and the others go on, unless
WMPLAT_STRICT_PLUGINS=1 makes any failure fatal.
"""

import functools
import importlib
import os
import warnings
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

import pluggy

from .. import __version__, hookspecs
from ..errors import PluginError
from ..method import Baseline, Method
from ..metric import Metric
from ..names import name_error
from ..task import Task
from .registry import Entry, Provider, Registry

GROUP = "wmplat"

DEFAULT_PLUGINS = (
    "wmplat.tasks.digits_mlp",
    "wmplat.baselines.replica",
    "wmplat.baselines.noise",
    "wmplat.baselines.average",
    "wmplat.baselines.gaussian",
    "wmplat.baselines.interpolate",
    "wmplat.metrics.accuracy",
    "wmplat.metrics.max_similarity",
    "wmplat.metrics.min_l2",
    "wmplat.metrics.aligned_l2",
    "wmplat.metrics.error_consistency",
)

# hook name -> (kind registered, base class it must subclass)
HOOKS = {
    "register_methods": ("method", Method),
    "register_baselines": ("baseline", Baseline),
    "register_datasets": ("dataset", Task),
    "register_metrics": ("metric", Metric),
}


RESERVED_NAMES = frozenset({"fresh", "train"})  # the reference rows


class PluginWarning(UserWarning):
    """A plugin failed; the others were loaded."""


@dataclass
class PluginStatus:
    plugin: str
    package: str
    version: str
    error: str | None = None


@dataclass
class Plugins:
    generators: Registry = field(default_factory=lambda: Registry("method"))  # methods, baselines
    datasets: Registry = field(default_factory=lambda: Registry("dataset"))
    metrics: Registry = field(default_factory=lambda: Registry("metric"))
    statuses: list[PluginStatus] = field(default_factory=list)

    def registry_for(self, kind: str) -> Registry:
        return {"method": self.generators, "baseline": self.generators,
                "dataset": self.datasets, "metric": self.metrics}[kind]

    def failures(self) -> list[PluginStatus]:
        return [s for s in self.statuses if s.error]


def strict() -> bool:
    return os.environ.get("WMPLAT_STRICT_PLUGINS", "").lower() in {"1", "true", "yes"}


@functools.cache
def load_plugins() -> Plugins:
    """All plugins, loaded once per process."""
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    plugins = Plugins()
    for module_name in DEFAULT_PLUGINS:
        provider = Provider(module_name, "wmplat", __version__)
        _load_one(pm, plugins, provider, lambda m=module_name: importlib.import_module(m))
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        dist = ep.dist
        provider = Provider(ep.name, dist.name if dist else "?", dist.version if dist else "?")
        _load_one(pm, plugins, provider, ep.load)
    for status in plugins.failures():
        message = f"plugin {status.plugin!r} ({status.package} {status.version}): {status.error}"
        if strict():
            raise PluginError(message + " (WMPLAT_STRICT_PLUGINS is set)")
        warnings.warn(message, PluginWarning, stacklevel=2)
    return plugins


def _load_one(pm: pluggy.PluginManager, plugins: Plugins, provider: Provider, load) -> None:
    status = PluginStatus(provider.plugin, provider.package, provider.version)
    plugins.statuses.append(status)
    try:
        module = load()
        pm.register(module, name=provider.plugin)
    except Exception as exc:  # a plugin's import may raise anything
        status.error = f"failed to load: {type(exc).__name__}: {exc}"
        return
    unknown = [c.name for c in pm.get_hookcallers(module) or [] if c.spec is None]
    if unknown:
        pm.unregister(module)
        status.error = (f"implements unknown hook(s) {unknown}; "
                        f"the hooks are {sorted(HOOKS)}")
        return
    impls = [(kind, base, impl) for hook_name, (kind, base) in HOOKS.items()
             for impl in getattr(pm.hook, hook_name).get_hookimpls() if impl.plugin is module]
    if not impls:
        status.error = ("registers nothing: are its hook functions named as in wmplat's "
                        "hookspecs and decorated with @wmplat.hookimpl?")
    for kind, base, impl in impls:
        error = _call_register(impl, plugins, provider, kind, base)
        status.error = "; ".join(e for e in (status.error, error) if e) or None


def _call_register(impl, plugins: Plugins, provider: Provider, kind: str, base: type) -> str | None:
    problems: list[str] = []

    def register(cls: Any) -> None:
        problem = _invalid(cls, kind, base)
        if problem:
            problems.append(problem)
            return
        entry_kind = getattr(cls, "kind", kind) if kind in ("method", "baseline") else kind
        clash = plugins.registry_for(kind).add(Entry(cls.name, entry_kind, cls, provider))
        if clash is not None:
            problems.append(f"{kind} name {cls.name!r} is already registered by "
                            f"{clash.provider} ({clash.kind})")

    try:
        impl.function(**{arg: register for arg in impl.argnames})
    except Exception as exc:
        problems.append(f"{impl.function.__name__} raised {type(exc).__name__}: {exc}")
    return "; ".join(problems) or None


def _invalid(cls: Any, kind: str, base: type) -> str | None:
    if not isinstance(cls, type) or not issubclass(cls, base):
        return f"registered {cls!r} as a {kind}, but it does not subclass wmplat.{base.__name__}"
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name.strip():
        return f"{kind} class {cls.__name__} has no `name` (a non-empty string)"
    if problem := name_error(kind, name, f"of class {cls.__name__}"):
        return problem
    if kind in ("method", "baseline") and name in RESERVED_NAMES:
        return f"{kind} name {name!r} is reserved for wmplat's reference rows"
    return None
