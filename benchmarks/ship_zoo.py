"""Regenerate the digits-mlp zoo that ships with wmplat (wmplat/tasks/zoos/digits-mlp).

Trains the zoo with the current recipe exactly as `wmplat zoo build digits-mlp` writes it,
copies manifest.json and weights.safetensors into the package, and prints the manifest's sha256
to pin as SHIPPED_MANIFEST_SHA256 in wmplat/tasks/digits_mlp.py. Run it only when the recipe
changes (and bump DigitsMLP.version with it):

    OMP_NUM_THREADS=1 python benchmarks/ship_zoo.py
"""

import shutil
import tempfile
from pathlib import Path

from wmplat.tasks.digits_mlp import SHIPPED, DigitsMLP
from wmplat.zoo.catalogue import write_built_zoo
from wmplat.zoo.format import MANIFEST, WEIGHTS, sha256_file


def main() -> None:
    task = DigitsMLP()
    built = task.build_zoo()
    with tempfile.TemporaryDirectory() as tmp:
        write_built_zoo(Path(tmp), task.name, task, built)
        SHIPPED.mkdir(parents=True, exist_ok=True)
        for name in (MANIFEST, WEIGHTS):
            shutil.copyfile(Path(tmp) / name, SHIPPED / name)
    print(f"{SHIPPED}: {len(built.models)} models")
    print(f'SHIPPED_MANIFEST_SHA256 = "{sha256_file(SHIPPED / MANIFEST)}"')


if __name__ == "__main__":
    main()
