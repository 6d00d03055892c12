"""The check that a plugin is written against wmplat's public API only, as a third party writes
one: what `wmplat/__init__.py` exports, and in tests `wmplat.testing` and `wmplat.plugins`'s
registration."""

import re
from pathlib import Path

IMPORT = re.compile(r"^\s*(?:import|from)\s+wmplat\b.*$", re.M)
ATTRIBUTE = re.compile(r"\bwmplat\.([A-Za-z_]\w*)")
TEST_IMPORTS = ("from wmplat.testing import ", "from wmplat.plugins import ")


def check_public_api(package: Path | str, tests: Path | str | None = None) -> None:
    """Every `.py` file under `package` imports only `import wmplat` and uses only the names it
    exports; files under `tests` may also import from `wmplat.testing` and `wmplat.plugins`."""
    import wmplat

    public = set(wmplat.__all__)
    for path in sorted(Path(package).rglob("*.py")):
        _check_file(path, public, allowed_imports=())
    if tests is not None:
        in_tests = public | {"testing", "plugins"}
        for path in sorted(Path(tests).rglob("*.py")):
            _check_file(path, in_tests, allowed_imports=TEST_IMPORTS)


def _check_file(path: Path, names: set[str], allowed_imports: tuple[str, ...]) -> None:
    source = path.read_text(encoding="utf-8")
    for line in (m.group(0).strip() for m in IMPORT.finditer(source)):
        assert line == "import wmplat" or line.startswith(allowed_imports) \
            or _public_from_import(line, names), (
            f"{path}: `{line}` reaches into wmplat's internals, which change without notice; "
            "use `import wmplat` and its public names (docs/plugins.md, Reference)")
    unknown = sorted(set(ATTRIBUTE.findall(source)) - names)
    assert not unknown, (f"{path}: uses wmplat.{', wmplat.'.join(unknown)}, not public names of "
                         "wmplat (docs/plugins.md, Reference)")


def _public_from_import(line: str, names: set[str]) -> bool:
    """`from wmplat import A, B` of public names only."""
    if not line.startswith("from wmplat import "):
        return False
    imported = line.removeprefix("from wmplat import ").strip("()").split(",")
    return all(n.split(" as ")[0].strip() in names for n in imported if n.strip())
