"""docs/plugins.md documents every public name and every hook, and nothing that is not public
(as datasette checks its hooks): its reference lists exactly what the code exports, each entry
linking to a section that exists."""

import inspect
import re
from pathlib import Path

import pytest

import wmplat
import wmplat.plugins
import wmplat.testing
from wmplat import hookspecs

DOC = (Path(__file__).parents[1] / "docs" / "plugins.md").read_text(encoding="utf-8")
REFERENCE = DOC[DOC.index("## Reference: every public name"):]
ROW = re.compile(r"^\| `([^`]+)` \| ([^|]+) \| (.+) \|$", re.M)


def documented() -> dict[str, str]:
    """Name -> its 'where it is described' cell, from the reference's tables."""
    return {name: where for name, _, where in ROW.findall(REFERENCE)}


def public_names() -> set[str]:
    names = {f"wmplat.{n}" for n in wmplat.__all__}
    names |= {f"wmplat.testing.{n}" for n in wmplat.testing.__all__}
    names |= {f"wmplat.plugins.{n}" for n in wmplat.plugins.__all__}
    return names


def hooks() -> set[str]:
    return {f"{name}(register)" for name, f in vars(hookspecs).items()
            if callable(f) and hasattr(f, "wmplat_spec")}


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_public_name_and_hook_is_in_the_reference_and_nothing_else():
    listed = set(documented())
    assert hooks(), "no hookspecs found"
    missing = (public_names() | hooks()) - listed
    assert not missing, f"public but not in docs/plugins.md's reference: {sorted(missing)}"
    extra = listed - public_names() - hooks()
    assert not extra, f"docs/plugins.md's reference lists what the code does not export: {extra}"


def test_every_reference_link_points_at_a_section_of_the_guide():
    anchors = {slug(h) for h in re.findall(r"^#+ (.+)$", DOC, re.M)}
    for name, where in documented().items():
        for target in re.findall(r"\]\(#([^)]+)\)", where):
            assert target in anchors, f"{name}: link #{target} names no heading of plugins.md"


@pytest.mark.parametrize("name", sorted(public_names()))
def test_every_public_function_and_class_has_a_docstring(name):
    module, _, attr = name.rpartition(".")
    value = getattr({"wmplat": wmplat, "wmplat.testing": wmplat.testing,
                     "wmplat.plugins": wmplat.plugins}[module], attr)
    if inspect.isclass(value) or inspect.isfunction(value):
        assert inspect.getdoc(value), f"{name} has no docstring"


def test_every_public_name_is_named_in_the_guide_outside_the_reference():
    guide = DOC[:DOC.index("## Reference: every public name")]
    for name in sorted(public_names() - {"wmplat.__version__"}):
        short = name.rpartition(".")[2]
        assert re.search(rf"`@?(wmplat\.(testing\.|plugins\.)?)?{re.escape(short)}\b", guide), (
            f"{name} is listed in the reference but described nowhere in the guide")
