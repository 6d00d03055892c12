"""The plugin is written as a third party writes one: against wmplat's public names only."""

import re
from pathlib import Path

import wmplat

PACKAGE = Path(__file__).resolve().parents[1]


def _wmplat_names(path: Path) -> tuple[list[str], set[str]]:
    """The import lines that mention wmplat, and every `wmplat.<name>` the file uses."""
    source = path.read_text()
    imports = [line.strip() for line in source.splitlines()
               if re.match(r"\s*(import|from)\s+wmplat\b", line)]
    return imports, set(re.findall(r"\bwmplat\.([A-Za-z_]\w*)", source))


def test_the_package_uses_only_wmplats_public_names():
    for path in sorted((PACKAGE / "wmplat_hyperreps").glob("*.py")):
        imports, names = _wmplat_names(path)
        assert set(imports) <= {"import wmplat"}, (path.name, imports)
        assert names <= set(wmplat.__all__), (path.name, sorted(names - set(wmplat.__all__)))


def test_the_tests_use_only_wmplat_and_its_test_kit():
    for path in sorted((PACKAGE / "tests").glob("*.py")):
        imports, names = _wmplat_names(path)
        assert all(line == "import wmplat" or line.startswith("from wmplat.testing import ")
                   for line in imports), (path.name, imports)
        assert names <= {*wmplat.__all__, "__all__", "testing"}, (path.name, names)
