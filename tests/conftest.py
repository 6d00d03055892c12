"""Shared fixtures: a private $WMPLAT_HOME with the shipped default zoo installed once, the
`wmplat` command run in this process (`cli`) or as a real process (`cli_process`), and test
plugins registered in process or pip-installed into a folder of their own (docs/testing.md,
"How the suite is built")."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from inprocess import run_wmplat

# Set before any test module imports torch. Tests run on several workers, each computing in
# process and starting CLI processes: one torch thread each, and passive OpenMP waiting, since
# oversubscribed spinning threads make small matrix products many times slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# The entry points the suite loads: the test plugins tox installs, not whatever other wmplat
# plugins the environment holds (install_plugin adds its own).
TEST_ENTRY_POINTS = "copycat,misbehaving"
os.environ["WMPLAT_LOAD_PLUGINS"] = TEST_ENTRY_POINTS

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
    return home


@pytest.fixture(scope="session", autouse=True)
def network_guard(tmp_path_factory) -> None:
    """Nothing in the tests may reach past this machine: a connection to any address but
    127.0.0.1, here or in a subprocess, fails the test that made it."""
    from hub_server import install_network_guard

    install_network_guard(log=tmp_path_factory.getbasetemp() / "netguard.log")


class Cli:
    """`wmplat` in this process (tests/inprocess.py): exit code, stdout and stderr as a process
    gives them."""

    def __init__(self, cwd: Path):
        self.cwd = cwd

    def __call__(self, *args: str, env: dict[str, str] | None = None, ok: bool = True,
                 cwd: Path | None = None) -> subprocess.CompletedProcess:
        proc = self.run(list(args), cwd or self.cwd, env or {})
        if ok and proc.returncode != 0:
            pytest.fail(f"wmplat {' '.join(args)} exited {proc.returncode}\n"
                        f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
        return proc

    def run(self, args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
        return run_wmplat(args, cwd, env)

    def json(self, *args: str, **kwargs):
        return json.loads(self(*args, **kwargs).stdout)


class ProcessCli(Cli):
    """The real `wmplat` command in a subprocess."""

    def run(self, args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
        return subprocess.run([WMPLAT, *args], cwd=cwd, capture_output=True, text=True,
                              env={**os.environ, **env}, timeout=600)


@pytest.fixture
def cli(tmp_path) -> Cli:
    """`wmplat`, run in this process in a fresh working folder."""
    return Cli(tmp_path)


@pytest.fixture
def cli_process(tmp_path) -> ProcessCli:
    """The real `wmplat` command, run as a process in a fresh working folder."""
    return ProcessCli(tmp_path)


@pytest.fixture(scope="session")
def default_zoo(wmplat_home) -> Path:
    """The digits-mlp zoo as shipped with wmplat, installed by its first use through the CLI
    (no training)."""
    Cli(wmplat_home)("zoo", "info", "digits-mlp")
    return wmplat_home / "zoos" / "digits-mlp"


NEW_SEEDS = range(10_000, 10_200)


@pytest.fixture(scope="session")
def new_seed_runs():
    """The last checkpoints of 200 runs trained with the default zoo's recipe from seeds the zoo
    never used: fresh models for the calibration tests, trained once per test process (tox
    runs the tests that use them on one worker: --dist loadgroup, group "new-seed-runs")."""
    from wmplat.tasks.digits_mlp import DigitsMLP

    checkpoints, _ = DigitsMLP().train_runs(NEW_SEEDS)
    return checkpoints[:, -1]


@pytest.fixture(scope="session")
def install_plugin(tmp_path_factory):
    """pip-install a package from tests/plugins into its own folder; return an env for the CLI
    whose PYTHONPATH adds it and whose WMPLAT_LOAD_PLUGINS names its entry point, so only the
    tests that ask for it see it."""
    installed: dict[str, Path] = {}

    def install(name: str) -> dict[str, str]:
        if name not in installed:
            target = tmp_path_factory.mktemp(name)
            subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                            "--no-build-isolation", "--no-index", "--target", str(target),
                            str(PLUGINS / name)], check=True, capture_output=True)
            installed[name] = target
        return {"PYTHONPATH": os.pathsep.join(
                    [str(installed[name]), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
                "WMPLAT_LOAD_PLUGINS": f"{TEST_ENTRY_POINTS},{name.removeprefix('wmplat-')}"}

    return install


def plugin_module(package: str):
    """The module of a test plugin package under tests/plugins, imported from its source."""
    module_name = package.replace("-", "_")
    spec = importlib.util.spec_from_file_location(module_name,
                                                  PLUGINS / package / f"{module_name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def use_plugin():
    """use(package): register a test plugin from tests/plugins in this process, without
    installing it, for the test's duration; for tests whose point is what the plugin does, not
    how it is found."""
    from wmplat.plugins import register, unregister

    names: list[str] = []
    yield lambda package: names.append(
        register(plugin_module(package), name=package.removeprefix("wmplat-")))
    for name in names:
        unregister(name)
