"""Fixtures: the package pip-installed into a folder of its own (a fresh environment for the
plugin), the real `wmplat` command run against it with a private $WMPLAT_HOME, and the tiny
test zoo (WMPLAT_SHAPES2D_TINY_ZOO=1) built once through that command."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

PACKAGE = Path(__file__).resolve().parents[1]
WMPLAT = shutil.which("wmplat", path=str(Path(sys.executable).parent)) or "wmplat"

try:
    import wmplat_hyperdiffusion  # noqa: F401  (installed: tox)
except ImportError:               # a checkout: test the package next to this folder
    sys.path.insert(0, str(PACKAGE))


@pytest.fixture(scope="session")
def installed(tmp_path_factory) -> Path:
    """`pip install --target` of this package, without its dependencies (they are wmplat's,
    torch's and scikit-image's, already in this environment)."""
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
    """A private $WMPLAT_HOME; the tiny recipe for in-process tests too."""
    path = tmp_path_factory.mktemp("wmplat-home")
    os.environ["WMPLAT_HOME"] = str(path)
    torch.set_num_threads(1)
    return path


@pytest.fixture(scope="session")
def cli(installed, home, tmp_path_factory) -> Cli:
    """The real `wmplat` command seeing the installed package and a private home."""
    env = {**os.environ, "WMPLAT_HOME": str(home), "OMP_NUM_THREADS": "1",
           "WMPLAT_SHAPES2D_TINY_ZOO": "1", "WMPLAT_STRICT_PLUGINS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(installed),
                                                       os.environ.get("PYTHONPATH")]))}
    return Cli(env, tmp_path_factory.mktemp("work"))


@pytest.fixture(scope="session")
def cli_zoo(cli, home) -> Path:
    """The tiny shapes2d-field zoo (10 train runs, 8 heldout, one field each)."""
    cli("zoo", "build", "shapes2d-field")
    return home / "zoos" / "shapes2d-field"


@pytest.fixture(scope="session")
def evaluated(cli, cli_zoo, tmp_path_factory) -> dict:
    """`wmplat evaluate --method noise` on the tiny zoo: {label: (row, results folder)}."""
    results = tmp_path_factory.mktemp("results")
    cli("evaluate", "--method", "noise", "--zoo", "shapes2d-field", "--samples", "8",
        "--results-dir", str(results))
    rows = cli.json("leaderboard", "--results-dir", str(results), "--format", "json")
    folders = {json.loads(p.read_text())["created_at"]: p.parent
               for p in results.rglob("result.json")}
    return {_label(r): (r, folders[r["created_at"]]) for r in rows}


def _label(row: dict) -> str:
    config = ",".join(f"{k}={v}" for k, v in sorted(row["config"].items()))
    return f"{row['method']}({config})" if config else row["method"]
