"""Fixtures: the package pip-installed into a folder of its own (a fresh environment for the
plugin), the real `wmplat` command run against it with a private $WMPLAT_HOME, and the tiny
test zoo (WMPLAT_HYPERREPS_TINY_ZOO=1) built once through that command; for the method's
parts, a small real zoo from wmplat.testing."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import wmplat
from wmplat.testing import method_view, tiny_zoo

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
def cli_zoo(cli, home) -> Path:
    """The tiny mnist1d-cnn zoo (12 train runs, 6 heldout, 2 checkpoints each)."""
    cli("zoo", "build", "mnist1d-cnn")
    return home / "zoos" / "mnist1d-cnn"


@pytest.fixture(scope="session")
def zoo() -> wmplat.TrainZoo:
    """What `fit` receives of a small real mnist1d-cnn zoo (wmplat.testing: 12 train runs of 2
    checkpoints around their own centres, 6 heldout runs; quality from the task itself)."""
    from wmplat_hyperreps.task import Mnist1dCNN

    return method_view(tiny_zoo(Mnist1dCNN(), runs=12, heldout=6, checkpoints=2))
