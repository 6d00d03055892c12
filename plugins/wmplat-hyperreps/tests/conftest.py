"""Fixtures: the package pip-installed into a folder of its own (a fresh environment for the
plugin), the real `wmplat` command run against it with a private $WMPLAT_HOME, and the tiny
test zoo (WMPLAT_HYPERREPS_TINY_ZOO=1) built once through that command."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

PACKAGE = Path(__file__).resolve().parents[1]
WMPLAT = shutil.which("wmplat", path=str(Path(sys.executable).parent)) or "wmplat"

try:
    import wmplat_hyperreps  # noqa: F401  (installed: tox)
except ImportError:          # a checkout: test the package next to this folder
    sys.path.insert(0, str(PACKAGE))


@pytest.fixture(scope="session")
def installed(tmp_path_factory) -> Path:
    """`pip install --target` of this package, without its dependencies (they are wmplat's,
    torch's and mnist1d's, already in this environment)."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--no-index", "--target", str(target),
                    str(PACKAGE)], check=True, capture_output=True, text=True)
    return target


class Cli:
    def __init__(self, env: dict[str, str], cwd: Path):
        self.env, self.cwd = env, cwd

    def __call__(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([WMPLAT, *args], cwd=self.cwd, env=self.env, text=True,
                              capture_output=True, timeout=600)
        if ok and proc.returncode != 0:
            pytest.fail(f"wmplat {' '.join(args)} exited {proc.returncode}\n"
                        f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
        return proc

    def json(self, *args: str):
        return json.loads(self(*args).stdout)


@pytest.fixture(scope="session", autouse=True)
def home(tmp_path_factory) -> Path:
    """A private $WMPLAT_HOME, for the CLI and for the MNIST-1D cache of in-process tests."""
    path = tmp_path_factory.mktemp("wmplat-home")
    os.environ["WMPLAT_HOME"] = str(path)
    torch.set_num_threads(1)
    return path


@pytest.fixture(scope="session")
def cli(installed, home, tmp_path_factory) -> Cli:
    """The real `wmplat` command seeing the installed package and a private home."""
    env = {**os.environ, "WMPLAT_HOME": str(home), "OMP_NUM_THREADS": "1",
           "WMPLAT_HYPERREPS_TINY_ZOO": "1", "WMPLAT_STRICT_PLUGINS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(installed),
                                                       os.environ.get("PYTHONPATH")]))}
    return Cli(env, tmp_path_factory.mktemp("work"))


@pytest.fixture(scope="session")
def tiny_zoo(cli, home) -> Path:
    """The tiny mnist1d-cnn zoo (12 train runs, 6 heldout, 2 checkpoints each)."""
    cli("zoo", "build", "mnist1d-cnn")
    return home / "zoos" / "mnist1d-cnn"


class FolderZoo:
    """The train split of a zoo folder, with the members wmplat gives a method (wmplat
    builds its own `Zoo` from the same two files; its loader is not public API)."""

    def __init__(self, folder: Path, task):
        manifest = json.loads((folder / "manifest.json").read_text())
        self.task, self.name = task, manifest["name"]
        self.param_spec = [(p["name"], tuple(p["shape"])) for p in manifest["param_spec"]]
        keep = [i for i, m in enumerate(manifest["models"]) if m["split"] == "train"]
        self._records = [_Record(**manifest["models"][i]) for i in keep]
        tensors = load_file(folder / "weights.safetensors")
        self._weights = self.flatten({k: v[keep] for k, v in tensors.items()})

    @property
    def num_params(self) -> int:
        return self._weights.shape[1]

    def train_weights(self) -> torch.Tensor:
        return self._weights.clone()

    def train_models(self):
        return list(self._records)

    def flatten(self, params):
        return torch.cat([params[n].reshape(len(params[n]), -1) for n, _ in self.param_spec],
                         dim=1)

    def unflatten(self, flat):
        sizes = [torch.Size(s).numel() for _, s in self.param_spec]
        return {n: part.reshape(len(flat), *s) for (n, s), part
                in zip(self.param_spec, flat.split(sizes, dim=1), strict=True)}


class _Record:
    def __init__(self, **fields):
        self.__dict__.update(fields)


@pytest.fixture(scope="session")
def zoo(tiny_zoo):
    from wmplat_hyperreps.task import Mnist1dCNN

    return FolderZoo(tiny_zoo, Mnist1dCNN())
