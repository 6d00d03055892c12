"""Shared fixtures: a private $WMPLAT_HOME with the shipped default zoo installed once, a CLI
runner that runs the real `wmplat` command in a subprocess, and extra plugin packages
pip-installed into a folder of their own for the tests that need a plugin which would disturb
every other test."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# The test Hub on 127.0.0.1: loaded as a plugin so that it sets HF_ENDPOINT and the other HF_*
# settings before any test module imports huggingface_hub, which reads them once.
pytest_plugins = ["hub_server"]

TESTS = Path(__file__).parent
PLUGINS = TESTS / "plugins"
WMPLAT = shutil.which("wmplat", path=str(Path(sys.executable).parent)) or "wmplat"


@pytest.fixture(scope="session", autouse=True)
def wmplat_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("wmplat-home")
    os.environ["WMPLAT_HOME"] = str(home)
    os.environ.pop("WMPLAT_STRICT_PLUGINS", None)
    # Tests run on several workers, each starting CLI processes: one torch thread each, since
    # oversubscribed OpenMP threads make small matrix products many times slower.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    return home


@pytest.fixture(scope="session", autouse=True)
def network_guard(tmp_path_factory) -> None:
    """Nothing in the tests may reach past this machine: a connection to any address but
    127.0.0.1, here or in a subprocess, fails the test that made it."""
    from hub_server import install_network_guard

    install_network_guard(log=tmp_path_factory.getbasetemp() / "netguard.log")


class Cli:
    def __init__(self, cwd: Path):
        self.cwd = cwd

    def __call__(self, *args: str, env: dict[str, str] | None = None, ok: bool = True,
                 cwd: Path | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run([WMPLAT, *args], cwd=cwd or self.cwd, capture_output=True,
                              text=True, env={**os.environ, **(env or {})}, timeout=600)
        if ok and proc.returncode != 0:
            pytest.fail(f"wmplat {' '.join(args)} exited {proc.returncode}\n"
                        f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
        return proc

    def json(self, *args: str, **kwargs):
        return json.loads(self(*args, **kwargs).stdout)


@pytest.fixture
def cli(tmp_path) -> Cli:
    """The real `wmplat` command, run in a fresh working folder."""
    return Cli(tmp_path)


@pytest.fixture(scope="session")
def default_zoo(wmplat_home) -> Path:
    """The digits-mlp zoo as shipped with wmplat, installed by its first use through the CLI
    (no training)."""
    Cli(wmplat_home)("zoo", "info", "digits-mlp")
    return wmplat_home / "zoos" / "digits-mlp"


@pytest.fixture(scope="session")
def install_plugin(tmp_path_factory):
    """pip-install a package from tests/plugins into its own folder; return an env for the CLI
    whose PYTHONPATH adds it, so only the tests that ask for it see it."""
    installed: dict[str, Path] = {}

    def install(name: str) -> dict[str, str]:
        if name not in installed:
            target = tmp_path_factory.mktemp(name)
            subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                            "--no-build-isolation", "--no-index", "--target", str(target),
                            str(PLUGINS / name)], check=True, capture_output=True)
            installed[name] = target
        return {"PYTHONPATH": os.pathsep.join(
            [str(installed[name]), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}

    return install
