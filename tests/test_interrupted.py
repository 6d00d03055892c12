"""A real evaluation killed at each of its write points: the rerun gives identical rows and
leaves no litter, and a row being replaced is never lost."""

import json
import shutil
import subprocess

import pytest
import torch
from conftest import Cli
from killing import KILLED, renames, run_killed_cli
from safetensors.torch import load_file

from wmplat.evaluation.store import read_row

ARGS = ["evaluate", "--method", "copycat", "--samples", "4"]


def run(cwd, kill_at: int, *extra: str) -> subprocess.CompletedProcess:
    """The evaluation, killed just before its rename number `kill_at` (0: never)."""
    return run_killed_cli([*ARGS, *extra], kill_at, cwd=cwd, env={"WMPLAT_QUIET": "1"})


def resume(cwd) -> subprocess.CompletedProcess:
    """The evaluation run again, to its end. In this process: what is tested is what the killed
    process left behind."""
    return Cli(cwd)(*ARGS, env={"WMPLAT_QUIET": "1"}, ok=False)


def stored(folder):
    out = {}
    for path in (folder / "wmplat-results").rglob("result.json"):
        row = json.loads(path.read_text())
        del row["created_at"], row["wall_seconds"]
        values = load_file(path.parent / "per_sample.safetensors")
        out[str(path.relative_to(folder))] = (row, {k: v.tolist() for k, v in values.items()})
    return out


def litter(folder):
    """Hidden items under the results folder, lock files aside."""
    return sorted(str(p.relative_to(folder)) for p in (folder / "wmplat-results").rglob(".*")
                  if not p.name.endswith(".lock"))


@pytest.fixture(scope="module")
def clean(tmp_path_factory, default_zoo):
    # a first evaluation caches what every later one shares (the digits split under
    # $WMPLAT_HOME), so that the counted one renames only its own rows
    assert resume(tmp_path_factory.mktemp("warm-up")).returncode == 0
    folder = tmp_path_factory.mktemp("uninterrupted")
    proc = run(folder, 0)
    assert proc.returncode == 0, proc.stderr
    assert renames(proc) >= 10     # one per row at least
    return stored(folder), renames(proc), folder


def test_an_evaluation_killed_before_any_rename_resumes_to_identical_rows(clean, tmp_path):
    rows, count, _ = clean
    for kill_at in range(1, count + 1):
        folder = tmp_path / f"kill-{kill_at}"
        folder.mkdir()
        killed = run(folder, kill_at)
        assert killed.returncode == KILLED, killed.stderr
        resumed = resume(folder)
        assert resumed.returncode == 0 and "Traceback" not in resumed.stderr, resumed.stderr
        assert stored(folder) == rows, kill_at
        assert litter(folder) == [], kill_at


@pytest.mark.parametrize("kill_at", [1, 2])
def test_a_row_killed_while_it_is_replaced_is_never_lost(clean, tmp_path, kill_at):
    rows, _, evaluated = clean
    shutil.copytree(evaluated / "wmplat-results", tmp_path / "wmplat-results")
    # --force replaces each row: first the old folder is moved aside, then the new moved in
    killed = run(tmp_path, kill_at, "--force")
    assert killed.returncode == KILLED
    assert stored(tmp_path) == rows or litter(tmp_path), "a row vanished without a backup"
    resumed = resume(tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert stored(tmp_path) == rows
    assert litter(tmp_path) == []


def test_every_row_is_whole_at_every_kill_point(clean, tmp_path):
    """What a killed run leaves readable is whole: every row folder has all its files."""
    _, count, _ = clean
    for kill_at in (2, count // 2, count):
        folder = tmp_path / f"kill-{kill_at}"
        folder.mkdir()
        run(folder, kill_at)
        for path in (folder / "wmplat-results").rglob("per_sample.safetensors"):
            if not any(part.startswith(".") for part in path.relative_to(folder).parts):
                assert (path.parent / "result.json").is_file()
                assert torch.is_tensor(next(iter(load_file(path).values())))


# --- a row with figures (a method's diagnostics) ------------------------------------------

DIAGNOSED = ["evaluate", "--method", "diagnosed", "--samples", "4"]


def with_figures(folder):
    """stored(folder), and every figure file's bytes."""
    files = {str(p.relative_to(folder)): p.read_bytes()
             for p in (folder / "wmplat-results").rglob("figures/*")}
    return stored(folder), files


@pytest.fixture(scope="module")
def diagnosed(install_plugin, tmp_path_factory, default_zoo):
    """The environment that installs wmplat-diagnosed, and one whole evaluation of it."""
    env = {**install_plugin("wmplat-diagnosed"), "WMPLAT_QUIET": "1"}
    folder = tmp_path_factory.mktemp("diagnosed")
    Cli(folder)(*DIAGNOSED, env=env)
    rows, files = with_figures(folder)
    assert [f for f in files if f.endswith("figures/self-check.png")], files
    return env, folder, (rows, files)


@pytest.mark.parametrize("kill_at, force", [(2, False), (3, False), (4, True)])
def test_a_row_with_figures_killed_as_it_is_written_resumes_whole(diagnosed, tmp_path, kill_at,
                                                                   force):
    """The figures are written inside the row's temporary folder: a kill before, between or
    after its renames leaves the row whole or absent (or moved aside, when replaced), and the
    rerun gives identical rows and figures. Rename 1 moves fresh's row in, 2 the method's (its
    temporary folder holds the figures); with --force, 3 moves the old method row aside and 4
    the new one in."""
    env, evaluated, clean = diagnosed
    if force:
        shutil.copytree(evaluated / "wmplat-results", tmp_path / "wmplat-results")
    killed = run_killed_cli([*DIAGNOSED, *(["--force"] if force else [])], kill_at,
                            cwd=tmp_path, env=env)
    assert killed.returncode == KILLED, killed.stderr
    for index in (tmp_path / "wmplat-results").rglob("figures.json"):
        if not any(part.startswith(".") for part in index.relative_to(tmp_path).parts):
            read_row(index.parent)            # what is visible is whole
    resumed = Cli(tmp_path)(*DIAGNOSED, env=env, ok=False)
    assert resumed.returncode == 0 and "Traceback" not in resumed.stderr, resumed.stderr
    assert with_figures(tmp_path) == clean
    assert litter(tmp_path) == []
