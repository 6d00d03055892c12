"""Import paths of wmplat 0.3 that moved in 0.4: they keep working until 0.5, with a
DeprecationWarning that names the new path.

Modules that moved into a subpackage are aliased by a finder; `wmplat.zoo` and `wmplat.report`,
now packages, forward their old names themselves (`forward`).
"""

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

MOVED_MODULES = {
    "wmplat.params": "wmplat.zoo.params",
    "wmplat.zoos": "wmplat.zoo.catalogue",
    "wmplat.home": "wmplat.zoo.home",
    "wmplat.train_view": "wmplat.zoo.train_view",
    "wmplat.alignment": "wmplat.engine.alignment",
    "wmplat.neighbours": "wmplat.engine.neighbours",
    "wmplat.threads": "wmplat.engine.threads",
    "wmplat.atomic": "wmplat.engine.atomic",
    "wmplat.progress": "wmplat.engine.progress",
    "wmplat.evaluate": "wmplat.evaluation.runner",
    "wmplat.statistics": "wmplat.evaluation.statistics",
    "wmplat.heldout_copies": "wmplat.evaluation.heldout_copies",
    "wmplat.results": "wmplat.evaluation.store",
    "wmplat.defaults": "wmplat.evaluation.defaults",
    "wmplat.leaderboard": "wmplat.report.leaderboard",
    "wmplat.figures": "wmplat.report.figures",
    "wmplat.preview": "wmplat.report.preview",
    "wmplat.registry": "wmplat.plugins.registry",
}


def _warn(old: str, new: str, stacklevel: int = 3) -> None:
    warnings.warn(f"{old} moved to {new} in wmplat 0.4 and the old path goes in 0.5; "
                  "plugins should use the public API (`import wmplat`, docs/plugins.md)",
                  DeprecationWarning, stacklevel=stacklevel)


class _Alias(importlib.abc.Loader):
    def __init__(self, new: str):
        self.new = new

    def create_module(self, spec):
        return None

    def exec_module(self, module) -> None:
        _warn(module.__name__, self.new)
        # the import system returns whatever sys.modules holds under the old name once this ends
        sys.modules[module.__name__] = importlib.import_module(self.new)


class _MovedFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname in MOVED_MODULES:
            return importlib.util.spec_from_loader(fullname, _Alias(MOVED_MODULES[fullname]))
        return None


def install() -> None:
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.append(_MovedFinder())


def forward(package: str, module: str, name: str):
    """An old name of the module that `package` was before it became a package."""
    if name.startswith("__"):
        raise AttributeError(name)
    target = importlib.import_module(module)
    if not hasattr(target, name):
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    _warn(f"{package}.{name}", f"{module}.{name}", stacklevel=4)
    return getattr(target, name)
