"""The 0.3 import paths keep working for one release, each with a DeprecationWarning naming the
new path, and give the very same objects as the new paths."""

import importlib
import subprocess
import sys

import pytest

from wmplat._moved import MOVED_MODULES


@pytest.mark.parametrize("old, new", sorted(MOVED_MODULES.items()))
def test_a_moved_module_is_the_new_module_with_a_warning(old, new):
    code = (f"import warnings; warnings.simplefilter('error')\n"
            f"import importlib\n"
            f"try:\n    importlib.import_module({old!r})\n"
            f"except DeprecationWarning as w:\n    print(w)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert f"{old} moved to {new}" in out.stdout
    with pytest.warns(DeprecationWarning):
        sys.modules.pop(old, None)
        module = importlib.import_module(old)
    assert module is importlib.import_module(new)
    assert module.__spec__.name == new


@pytest.mark.parametrize("package, name, module", [
    ("wmplat.zoo", "load_zoo", "wmplat.zoo.format"),
    ("wmplat.zoo", "Zoo", "wmplat.zoo.format"),
    ("wmplat.report", "write_report", "wmplat.report.html"),
])
def test_an_old_name_of_a_module_that_became_a_package_still_resolves(package, name, module):
    with pytest.warns(DeprecationWarning, match=f"{package}.{name} moved to {module}.{name}"):
        value = getattr(importlib.import_module(package), name)
    assert value is getattr(importlib.import_module(module), name)


def test_a_name_that_never_existed_is_still_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        _ = importlib.import_module("wmplat.zoo").nothing_here
