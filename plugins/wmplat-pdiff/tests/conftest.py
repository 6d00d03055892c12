"""Fixtures: the package pip-installed into a folder of its own (a fresh environment for the
plugin), the real `wmplat` command run with that folder on PYTHONPATH and a private
WMPLAT_HOME, and a small real zoo (wmplat.testing) for the method's components."""

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import wmplat
from wmplat.testing import method_view, tiny_zoo

# One thread, as the CLI runs get (OMP_NUM_THREADS=1): on a shared machine torch's default
# thread pool makes these small trainings several times slower.
torch.set_num_threads(1)

PACKAGE = Path(__file__).resolve().parents[1]
if importlib.util.find_spec("wmplat_pdiff") is None:
    # A checkout that is not installed: the component tests import the package from here.
    sys.path.insert(0, str(PACKAGE))
WMPLAT = shutil.which("wmplat", path=str(Path(sys.executable).parent)) or "wmplat"


@pytest.fixture(scope="session")
def installed(tmp_path_factory) -> Path:
    """wmplat-pdiff installed by pip into an empty folder, from this source tree."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--no-index", "--target", str(target),
                    str(PACKAGE)], check=True, capture_output=True)
    return target


class Wmplat:
    """The real `wmplat` command, seeing the installed plugin, with its own WMPLAT_HOME."""

    def __init__(self, site: Path, home: Path):
        path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
        self.env = {**os.environ, "PYTHONPATH": path, "WMPLAT_HOME": str(home),
                    "OMP_NUM_THREADS": "1"}
        self.env.pop("WMPLAT_QUIET", None)
        self.home = home

    def __call__(self, *args: str, cwd: Path, ok: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([WMPLAT, *args], cwd=cwd, env=self.env, capture_output=True,
                              text=True, timeout=900)
        if ok and proc.returncode != 0:
            pytest.fail(f"wmplat {' '.join(args)} exited {proc.returncode}\n"
                        f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
        return proc


@pytest.fixture(scope="session")
def wmplat_cli(installed, tmp_path_factory) -> Wmplat:
    return Wmplat(installed, tmp_path_factory.mktemp("wmplat-home"))


@pytest.fixture
def another_wmplat_cli(installed, tmp_path) -> Wmplat:
    """The same command with a WMPLAT_HOME of its own, empty."""
    return Wmplat(installed, tmp_path / "home")


SMALL_SPEC = [("fc.weight", (4, 5)), ("norm.weight", (24,)), ("norm.bias", (24,))]


def small(**options) -> wmplat.Zoo:
    """A real zoo of one train run of 40 iterates in which only `norm.weight` and `norm.bias`
    move (the 48 values after the first 20), beside two heldout runs: p-diff's setting."""
    settings = {"runs": 1, "heldout": 2, "checkpoints": 40, "frozen": ["fc.weight"], **options}
    return tiny_zoo(SMALL_SPEC, **settings)


@pytest.fixture(name="small")
def small_fixture():
    """`small` itself: call it for a small zoo with other options."""
    return small


@pytest.fixture
def small_zoo() -> wmplat.TrainZoo:
    """What `fit` receives of the small zoo: its train view."""
    return method_view(small())


TINY = {"channels": 4, "ae_steps": 30, "ddpm_steps": 30, "timesteps": 20,
        "denoiser_width": 32, "batch_size": 16}


@pytest.fixture
def tiny() -> dict:
    """Options that fit and sample in well under a second."""
    return dict(TINY)
