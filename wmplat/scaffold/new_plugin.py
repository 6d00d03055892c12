"""Write the skeleton of a plugin package: pyproject with the entry point, the module, a README
and tests that use `wmplat.testing`, ready to `pip install` and to pass its own tests.

Templates live in `templates/common/` (every kind) and `templates/<kind>/`; a file's path and text
may hold the placeholders of `Skeleton.placeholders`, written `{{placeholder}}`. The package
appears whole or not at all (written beside, then renamed).
"""

import re
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..engine.atomic import atomic_folder
from ..errors import ConfigError
from ..names import check_name

KINDS = ("method", "metric", "dataset")
TEMPLATES = Path(__file__).parent / "templates"
SUFFIX = ".tmpl"  # template files end in it, so that no tool reads them as code
PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
SUMMARIES = {
    "method": "an example generator (Gaussian samples around the training mean) to replace",
    "metric": "an example metric (each sample's weight norm) to replace",
    "dataset": "an example task (a small MLP on a seeded two-moons-like problem) with its zoo",
}
TRY_IT = {
    "method": "wmplat evaluate --method {name} --samples 20",
    "metric": "wmplat evaluate --method noise --samples 20   # every row gets its column",
    "dataset": "wmplat evaluate --method noise --zoo {name} --samples 20",
}


@dataclass(frozen=True)
class Skeleton:
    kind: str
    name: str           # the plugin's name: --method NAME, the entry point, the zoo's task
    package: str        # the distribution: wmplat-NAME
    module: str         # the import name: wmplat_NAME with '-' and '.' as '_'
    class_name: str     # CamelCase of NAME

    def placeholders(self) -> dict[str, str]:
        major, minor = __version__.split(".")[:2]
        return {"name": self.name, "package": self.package, "module": self.module,
                "snake": self.module.removeprefix("wmplat_"), "class_name": self.class_name,
                "kind": self.kind, "summary": SUMMARIES[self.kind],
                "try_it": TRY_IT[self.kind].format(name=self.name),
                "wmplat_requirement": f"wmplat>={major}.{minor}"}


def skeleton(kind: str, name: str) -> Skeleton:
    if kind not in KINDS:
        raise ConfigError(f"--kind must be one of {', '.join(KINDS)}, got {kind!r}")
    check_name(kind, name)
    words = re.split(r"[-._]+", name)
    class_name = "".join(w[:1].upper() + w[1:] for w in words if w)
    if not class_name[0].isalpha():
        class_name = kind.capitalize() + class_name
    return Skeleton(kind, name, f"wmplat-{name}", "wmplat_" + re.sub(r"[-.]", "_", name),
                    class_name)


def new_plugin(kind: str, name: str, parent: Path) -> Path:
    """Write the package `wmplat-NAME` of `kind` into the existing folder `parent`; return it."""
    plan = skeleton(kind, name)
    if not parent.is_dir():
        raise ConfigError(f"--dir {parent} is not an existing folder; create it first")
    target = parent / plan.package
    if target.exists() or target.is_symlink():
        raise ConfigError(f"{target} already exists; remove it or choose another name or --dir")
    values = plan.placeholders()
    with atomic_folder(target, owned=lambda _: False) as tmp:
        for root in (TEMPLATES / "common", TEMPLATES / kind):
            for template in sorted(root.rglob(f"*{SUFFIX}")):
                relative = template.relative_to(root).as_posix()[: -len(SUFFIX)]
                out = tmp / _fill(relative, values)
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(_fill(template.read_text(encoding="utf-8"), values),
                               encoding="utf-8")
    return target


def _fill(text: str, values: dict[str, str]) -> str:
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], text)
