"""Fixtures: the package pip-installed into a folder of its own (a fresh environment for the
plugin), the real `wmplat` command run with that folder on PYTHONPATH and a private
WMPLAT_HOME, and a small zoo for the method's components."""

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

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
        self.env = {**os.environ, "PYTHONPATH": str(site), "WMPLAT_HOME": str(home),
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


class SmallZoo:
    """What wmplat.Zoo offers a method (DESIGN.md: train_weights, train_models, num_params,
    param_spec, flatten, unflatten), over 40 iterates of one run in which only `norm.weight`
    and `norm.bias` move along a curve, the rest frozen."""

    def __init__(self, checkpoints: int = 40):
        self.param_spec = [("fc.weight", (4, 5)), ("norm.weight", (24,)), ("norm.bias", (24,))]
        self.num_params = 20 + 48
        g = torch.Generator().manual_seed(0)
        start, direction = torch.randn(48, generator=g), torch.randn(48, generator=g)
        t = torch.linspace(0, 1, checkpoints).unsqueeze(1)
        subset = start + 0.5 * t * direction + 0.01 * torch.randn(checkpoints, 48, generator=g)
        frozen = torch.randn(1, 20, generator=g).expand(checkpoints, 20)
        self._weights = torch.cat([frozen, subset], dim=1)
        self._models = [SimpleNamespace(id=f"run000-step{s}", run=0, step=s, split="train",
                                        seed=0, quality=0.9) for s in range(checkpoints)]

    def train_weights(self) -> torch.Tensor:
        return self._weights.clone()

    def train_models(self):
        return list(self._models)

    def unflatten(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        sizes = [torch.Size(shape).numel() for _, shape in self.param_spec]
        return {name: part.reshape(len(flat), *shape) for (name, shape), part
                in zip(self.param_spec, flat.split(sizes, dim=1), strict=True)}

    def flatten(self, params: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([params[name].flatten(1) for name, _ in self.param_spec], dim=1)


@pytest.fixture
def small_zoo() -> SmallZoo:
    return SmallZoo()


TINY = {"channels": 4, "ae_steps": 30, "ddpm_steps": 30, "timesteps": 20,
        "denoiser_width": 32, "batch_size": 16}


@pytest.fixture
def tiny() -> dict:
    """Options that fit and sample in well under a second."""
    return dict(TINY)
