"""Fixtures: the package pip-installed into a folder of its own (a fresh environment for the
plugin), the real `wmplat` command run with that folder on PYTHONPATH, a private WMPLAT_HOME
and the tiny test zoo's recipe (WMPLAT_GPT_TINY_ZOO=1), and that tiny zoo built once through
the command."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

# One thread, as the CLI runs get (OMP_NUM_THREADS=1): on a shared machine torch's default
# thread pool makes these small trainings several times slower.
torch.set_num_threads(1)

PACKAGE = Path(__file__).resolve().parents[1]
if importlib.util.find_spec("wmplat_gpt") is None:
    # A checkout that is not installed: the in-process tests import the package from here.
    sys.path.insert(0, str(PACKAGE))
WMPLAT = shutil.which("wmplat", path=str(Path(sys.executable).parent)) or "wmplat"


@pytest.fixture(scope="session", autouse=True)
def home(tmp_path_factory) -> Path:
    """A private $WMPLAT_HOME for the whole session: the CLI's, and where in-process tests
    cache the MNIST split."""
    path = tmp_path_factory.mktemp("wmplat-home")
    os.environ["WMPLAT_HOME"] = str(path)
    return path


@pytest.fixture(scope="session")
def installed(tmp_path_factory) -> Path:
    """wmplat-gpt installed by pip into an empty folder, from this source tree."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--no-index", "--target", str(target),
                    str(PACKAGE)], check=True, capture_output=True)
    return target


class Wmplat:
    """The real `wmplat` command, seeing the installed plugin, with its own WMPLAT_HOME and the
    tiny zoo's recipe."""

    def __init__(self, site: Path, home: Path):
        path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
        self.env = {**os.environ, "PYTHONPATH": path, "WMPLAT_HOME": str(home),
                    "OMP_NUM_THREADS": "1", "WMPLAT_GPT_TINY_ZOO": "1",
                    "WMPLAT_STRICT_PLUGINS": "1"}
        self.env.pop("WMPLAT_QUIET", None)
        self.home = home

    def __call__(self, *args: str, cwd: Path, ok: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([WMPLAT, *args], cwd=cwd, env=self.env, capture_output=True,
                              text=True, timeout=900)
        if ok and proc.returncode != 0:
            pytest.fail(f"wmplat {' '.join(args)} exited {proc.returncode}\n"
                        f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
        return proc

    def json(self, *args: str, cwd: Path):
        return json.loads(self(*args, cwd=cwd).stdout)


@pytest.fixture(scope="session")
def wmplat_cli(installed, home) -> Wmplat:
    return Wmplat(installed, home)


@pytest.fixture
def another_wmplat_cli(installed, tmp_path) -> Wmplat:
    """The same command with a WMPLAT_HOME of its own, empty."""
    return Wmplat(installed, tmp_path / "home")


@pytest.fixture(scope="session")
def tiny_zoo_folder(wmplat_cli, tmp_path_factory) -> Path:
    """The tiny mnist-gpt zoo (6 train runs of 5 checkpoints, 3 heldout runs of 3), built
    once by `wmplat zoo build mnist-gpt`."""
    wmplat_cli("zoo", "build", "mnist-gpt", cwd=tmp_path_factory.mktemp("work"))
    return wmplat_cli.home / "zoos" / "mnist-gpt"
