"""Loading plugins: the built-ins, every entry point in group `wmplat`, and the plugins
registered in this process, all through the same hooks.

Each plugin is loaded once, on its own: one that fails to import or registers something invalid
is recorded with its error and reported as a warning, and the others go on, unless
WMPLAT_STRICT_PLUGINS=1 makes any failure fatal. WMPLAT_LOAD_PLUGINS=a,b loads only the entry
points named a and b (empty: none), and reports a name that no installed package provides as a
failed plugin; the built-ins and registered plugins always load.

`register(obj)` adds a plugin without installing a package, for tests and notebooks: any module,
class or object whose hook functions carry `@wmplat.hookimpl`.
"""

import functools
import importlib
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
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

__all__ = ["register", "registered", "unregister"]  # the public part; the rest is internal

GROUP = "wmplat"
LOAD_ENV = "WMPLAT_LOAD_PLUGINS"
IN_PROCESS = "(registered in process)"  # the package of a plugin given to register()
NOT_INSTALLED = "(not installed)"  # the package of a name in WMPLAT_LOAD_PLUGINS none provides

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


_registered: dict[str, Any] = {}  # name -> plugin object, in the order registered


def register(plugin: Any, name: str | None = None) -> str:
    """Add `plugin` in this process, as if a package's entry point named it; returns its name.

    Commands and `wmplat.evaluate` see it from the next call on. `name` defaults to the
    module's or class's `__name__`."""
    name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
    if name in _registered:
        raise PluginError(f"a plugin named {name!r} is already registered in this process; "
                          "unregister it first or pass another name=")
    _registered[name] = plugin
    load_plugins.cache_clear()
    return name


def unregister(name: str) -> None:
    """Remove a plugin that `register` added (nothing happens for an unknown name)."""
    if _registered.pop(name, None) is not None:
        load_plugins.cache_clear()


@contextmanager
def registered(*plugins: Any) -> Iterator[list[str]]:
    """`register` each plugin for the duration of a `with` block, then `unregister` it."""
    names: list[str] = []
    try:
        for plugin in plugins:
            names.append(register(plugin))
        yield names
    finally:
        for name in names:
            unregister(name)


def _wanted_entry_points(plugins: Plugins) -> list:
    """The entry points of group `wmplat` that WMPLAT_LOAD_PLUGINS names (all when unset). A
    name no installed package provides is recorded as a failed plugin, so that `wmplat plugins`
    lists it and every other command warns about it."""
    found = sorted(entry_points(group=GROUP), key=lambda e: e.name)
    wanted = os.environ.get(LOAD_ENV)
    if wanted is None:
        return found
    names = {n.strip() for n in wanted.split(",") if n.strip()}
    installed = sorted(ep.name for ep in found)
    for name in sorted(names - set(installed)):
        plugins.statuses.append(PluginStatus(
            name, NOT_INSTALLED, "-", f"{LOAD_ENV} names it, but no installed package has an "
            f"entry point of that name in group {GROUP!r} (installed: "
            f"{', '.join(installed) or 'none'})"))
    return [ep for ep in found if ep.name in names]


@functools.cache
def load_plugins() -> Plugins:
    """All plugins, loaded once per process (again after `register` or `unregister`)."""
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    plugins = Plugins()
    for module_name in DEFAULT_PLUGINS:
        provider = Provider(module_name, "wmplat", __version__)
        _load_one(pm, plugins, provider, lambda m=module_name: importlib.import_module(m))
    for ep in _wanted_entry_points(plugins):
        dist = ep.dist
        provider = Provider(ep.name, dist.name if dist else "?", dist.version if dist else "?")
        _load_one(pm, plugins, provider, ep.load)
    for name, plugin in _registered.items():
        version = str(getattr(plugin, "__version__", "-"))
        _load_one(pm, plugins, Provider(name, IN_PROCESS, version), lambda p=plugin: p)
    for status in plugins.failures():
        where = "" if status.package == NOT_INSTALLED else f" ({status.package} {status.version})"
        message = f"plugin {status.plugin!r}{where}: {status.error}"
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
