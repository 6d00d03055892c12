"""`wmplat sweep`: a grid of real evaluations, locally and on a real Ray instance, the same
numbers as sequential `wmplat evaluate` runs, bit for bit; failures isolated; resumable after a
kill; overlapping sweeps compute each cell once."""

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import WMPLAT
from safetensors.torch import load_file

from wmplat.evaluation.store import read_row

# Ray instances and worker processes share the cores: one worker for these tests, where
# xdist groups work (pytest 9.2 with xdist 3.8 ignores them; nothing here depends on it)
pytestmark = pytest.mark.xdist_group("sweeps")

GRID = ["--methods", "copycat,noise", "--seeds", "0-1", "--samples", "8"]
# per seed: 7 baselines (noise at its two settings among them) and copycat; the two references
CELLS = 2 + 2 * 8
COUNTS = re.compile(r"(\d+) computed, (\d+) reused, (\d+) failed")
RAY = shutil.which("ray", path=str(Path(sys.executable).parent))


def rows(results: Path) -> dict:
    """Every stored row: its result.json without the times, and its tensors as lists."""
    out = {}
    for path in sorted(results.rglob("result.json")):
        row = json.loads(path.read_text())
        del row["created_at"], row["wall_seconds"]
        tensors = {f: {k: v.tolist() for k, v in load_file(path.parent / f).items()}
                   for f in ("per_sample.safetensors", "preview.safetensors")
                   if (path.parent / f).exists()}
        out[str(path.parent.relative_to(results))] = (row, tensors)
    return out


def counts(stderr: str) -> tuple[int, int, int]:
    found = COUNTS.findall(stderr)
    assert found, stderr
    return tuple(int(n) for n in found[-1])


@pytest.fixture(scope="module")
def swept(tmp_path_factory, default_zoo):
    """The grid swept once by the local executor (two workers), through the real command."""
    folder = tmp_path_factory.mktemp("swept")
    proc = subprocess.run([WMPLAT, "sweep", *GRID, "--workers", "2", "--results-dir", "R"],
                          cwd=folder, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return folder / "R", proc


def test_a_local_sweep_gives_the_numbers_of_sequential_evaluations_bit_for_bit(swept, cli):
    results, proc = swept
    assert counts(proc.stderr) == (CELLS, 0, 0)
    for method in ("copycat", "noise"):
        for seed in ("0", "1"):
            cli("evaluate", "--method", method, "--seed", seed, "--samples", "8",
                "--results-dir", "E", env={"WMPLAT_QUIET": "1"})
    sequential = rows(cli.cwd / "E")
    assert len(sequential) == CELLS
    assert rows(results) == sequential


def test_a_sweep_prints_a_line_per_cell_and_the_leaderboard(swept):
    _, proc = swept
    lines = [line for line in proc.stderr.splitlines() if line.startswith("[")]
    assert len(lines) == CELLS
    assert lines[0].startswith(f"[1/{CELLS} · ") and " fresh on digits-mlp: novel in " in lines[0]
    assert lines[-1].startswith(f"[{CELLS}/{CELLS} · ") and "~0:00 left]" in lines[-1]
    assert "copycat seed 1 on digits-mlp: memorizes" in proc.stderr
    assert proc.stdout.startswith("zoo digits-mlp (revision local-")


def test_a_sweep_run_again_reuses_every_cell(swept, tmp_path, cli):
    results, _ = swept
    shutil.copytree(results, tmp_path / "R")
    proc = cli("sweep", *GRID, "--results-dir", "R")
    assert counts(proc.stderr) == (0, CELLS, 0)
    assert rows(tmp_path / "R") == rows(results)


# --- a worker that dies ----------------------------------------------------------------------

def doomed_grid(results: Path) -> list[str]:
    return ["sweep", "--methods", "copycat,doomed", "--set", "doomed.die_at_seed=1", "--seeds",
            "0-1", "--samples", "8", "--results-dir", str(results)]


@pytest.mark.parametrize("executor, death", [
    ("local", "its worker process died (killed by SIGKILL)"),
    ("ray", "its Ray task failed: "),
])
def test_a_killed_worker_fails_its_cell_only(swept, tmp_path, install_plugin, executor, death,
                                             cli_process, ray_guard):
    results = tmp_path / "R"
    shutil.copytree(swept[0], results)      # the baselines and copycat are reused
    proc = cli_process(*doomed_grid(results), "--executor", executor,
                       env={**install_plugin("wmplat-doomed"), **ray_guard}, ok=False)
    assert proc.returncode == 1, proc.stderr
    assert counts(proc.stderr) == (1, CELLS, 1)
    failed = "doomed(die_at_seed=1) seed 1 on digits-mlp: "
    assert f"{failed}FAILED: {death}" in proc.stderr
    assert re.search(r"wmplat evaluate --method doomed --zoo digits-mlp --samples 8 "
                     r"--results-dir \S+ --seed 1 --set die_at_seed=1\n", proc.stderr)
    assert proc.stderr.rstrip().endswith("error: 1 of 20 cells failed (listed above with the "
                                         "commands that rerun them)")
    stored = rows(results)
    assert len(stored) == CELLS + 1
    assert sum("doomed" in k for k in stored) == 1     # seed 0's row, written
    assert not list(results.rglob(".*tmp-*"))


# --- interrupted, and overlapping ------------------------------------------------------------

def start_sweep(cwd: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([WMPLAT, *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def wait_for_rows(results: Path, n: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 300
    while len(list(results.rglob("result.json"))) < n:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_rerun_after_a_killed_sweep_computes_only_the_missing_cells(swept, tmp_path, cli):
    proc = start_sweep(tmp_path, "sweep", *GRID, "--workers", "1", "--results-dir", "R")
    wait_for_rows(tmp_path / "R", 5, proc)
    os.killpg(proc.pid, signal.SIGKILL)       # the driver and its workers, as by kill -9
    proc.communicate()
    left = list((tmp_path / "R").rglob("result.json"))
    for path in left:
        read_row(path.parent)                 # every stored row whole
    again = cli("sweep", *GRID, "--results-dir", "R")
    assert counts(again.stderr) == (CELLS - len(left), len(left), 0)
    assert rows(tmp_path / "R") == rows(swept[0])


def test_an_interrupted_sweep_says_what_is_done_and_exits_130(tmp_path, default_zoo):
    proc = start_sweep(tmp_path, "sweep", *GRID, "--workers", "1", "--results-dir", "R")
    wait_for_rows(tmp_path / "R", 3, proc)
    os.kill(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    done = len(list((tmp_path / "R").rglob("result.json")))
    assert f"sweep interrupted: {CELLS} cells in " in stderr
    computed, reused, failed = counts(stderr)
    assert (computed, reused, failed) == (done, 0, 0)
    assert f", {CELLS - done} not run" in stderr
    assert "Run the same `wmplat sweep` command again" in stderr


def test_two_overlapping_sweeps_compute_each_cell_once(swept, tmp_path):
    first = start_sweep(tmp_path, "sweep", "--methods", "copycat", "--seeds", "0-1",
                        "--samples", "8", "--workers", "1", "--results-dir", "R")
    second = start_sweep(tmp_path, "sweep", "--methods", "copycat,noise", "--seeds", "1,0",
                         "--samples", "8", "--workers", "1", "--results-dir", "R")
    outs = [p.communicate(timeout=600) for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], outs
    (c1, r1, _), (c2, r2, _) = (counts(err) for _, err in outs)
    assert (c1 + r1, c2 + r2) == (CELLS, CELLS)    # copycat is the baselines' grid plus one
    assert c1 + c2 == CELLS                        # no cell computed twice
    assert rows(tmp_path / "R") == rows(swept[0])


# --- Ray -------------------------------------------------------------------------------------

# When it starts, Ray's dashboard asks the cloud metadata endpoints which cloud it runs on (even
# with usage stats off; ray/_common/usage/usage_lib.py): the guard refuses them, as a machine
# without a cloud would. Ray's processes log refusals to a file of their own, so that these are
# told apart from any other attempt, which fails the test.
RAY_PROBES = re.compile(r"WMPLAT_NETGUARD\): (169\.254\.169\.254|metadata\.google\.internal):80$")


def check_guard_log(log: Path) -> None:
    attempts = log.read_text().splitlines() if log.exists() else []
    unexpected = [a for a in attempts if not RAY_PROBES.search(a)]
    assert not unexpected, "a Ray run tried to reach the network:\n" + "\n".join(unexpected)


@pytest.fixture
def ray_guard(tmp_path):
    """The environment that sends the refusals of a sweep's Ray processes to their own log."""
    log = tmp_path / "ray-netguard.log"
    yield {"WMPLAT_NETGUARD_LOG": str(log)}
    check_guard_log(log)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_cluster():
    """A Ray head started by the test on 127.0.0.1, in a temporary folder, with a token of its
    own, stopped at the end: its address and the settings that give access to it. Its workers
    see the installed test plugins (copycat), nothing else. `ray start --block` runs in a
    process group of its own, ended at the end: `ray stop` would stop every Ray instance on the
    machine, another test's too."""
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")   # socket paths must stay short
    port = free_port()
    log = Path(temp) / "netguard.log"
    access = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    # a cluster of `ray start` tells Ray's server that its usage stats are off, unless the
    # report goes elsewhere (Ray's own setting for its tests): here, nowhere
    env = {**os.environ, **access, "RAY_USAGE_STATS_ENABLED": "0",
           "RAY_USAGE_STATS_REPORT_URL": "http://127.0.0.1:9/", "WMPLAT_NETGUARD_LOG": str(log)}
    # every port its own, so that another test's Ray instance never collides with it
    ports = [f"--{name}={free_port()}" for name in (
        "node-manager-port", "object-manager-port", "dashboard-agent-grpc-port",
        "dashboard-agent-listen-port", "metrics-export-port", "runtime-env-agent-port")]
    output = open(Path(temp) / "head.log", "w")     # closed once the head has ended
    head = subprocess.Popen(
        [RAY, "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--port",
         str(port), *ports, "--num-cpus", "2", "--temp-dir", temp, "--include-dashboard",
         "false"], env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    address = f"127.0.0.1:{port}"
    try:
        wait_until_up(address, env, head, Path(temp) / "head.log")
        yield address, access
    finally:
        stop(head)
        output.close()
        check_guard_log(log)
        shutil.rmtree(temp, ignore_errors=True)


def wait_until_up(address: str, env: dict, head: subprocess.Popen, log: Path,
                  seconds: float = 120) -> None:
    """`ray start` runs before its node has registered; on a loaded machine, long before."""
    deadline = time.monotonic() + seconds
    while True:
        assert head.poll() is None, "ray start --head ended:\n" + log.read_text()[-3000:]
        status = subprocess.run([RAY, "status", "--address", address], capture_output=True,
                                text=True, env=env, timeout=seconds)
        if status.returncode == 0 and "Active:" in status.stdout:
            return
        assert time.monotonic() < deadline, status.stdout + status.stderr
        time.sleep(1)


def stop(head: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 30)):
        try:
            os.killpg(head.pid, sig)
        except ProcessLookupError:
            return
        try:
            head.wait(timeout=wait)
            time.sleep(1)      # its children, in the same group, end with it
        except subprocess.TimeoutExpired:
            continue
    try:
        os.killpg(head.pid, signal.SIGKILL)     # whatever of the group is left
    except ProcessLookupError:
        pass


def test_a_sweep_on_a_ray_cluster_gives_the_local_sweeps_numbers(swept, ray_cluster,
                                                                   cli_process, ray_guard):
    address, access = ray_cluster
    proc = cli_process("sweep", *GRID, "--executor", "ray", "--address", address,
                       "--results-dir", "R", env={**access, **ray_guard})
    assert counts(proc.stderr) == (CELLS, 0, 0)
    assert rows(cli_process.cwd / "R") == rows(swept[0])


def test_a_ray_worker_without_a_plugin_is_named_before_any_cell_runs(ray_cluster, cli_process,
                                                                      install_plugin,
                                                                      ray_guard):
    address, access = ray_cluster
    proc = cli_process(*doomed_grid(Path("R")), "--executor", "ray", "--address", address,
                       env={**install_plugin("wmplat-doomed"), **access, **ray_guard}, ok=False)
    assert proc.returncode == 1
    assert re.fullmatch(r"error: the sweep's worker on \S+ lacks method 'doomed' \(package "
                        r"wmplat-doomed 0\.1\.0 here\): install the same plugins on every "
                        r"worker \(docs/sweeps\.md\)\n", proc.stderr.splitlines(True)[-1])
    assert not (cli_process.cwd / "R").exists()
