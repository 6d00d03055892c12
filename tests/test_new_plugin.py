"""`wmplat new-plugin` writes packages that pip installs and that pass their own tests as
written, and wmplat evaluates the method it generates."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

WMPLAT = [sys.executable, "-m", "wmplat"]
ROOT = Path(__file__).parents[1]


def run(*args, cwd: Path, env: dict | None = None, ok: bool = True):
    proc = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})
    if ok and proc.returncode:
        pytest.fail(f"{' '.join(map(str, args))} exited {proc.returncode}\n"
                    f"{proc.stdout}\n{proc.stderr}")
    return proc


def generate_and_install(kind: str, name: str, where: Path) -> tuple[Path, dict]:
    out = run(*WMPLAT, "new-plugin", "--kind", kind, name, "--dir", str(where), cwd=where)
    package = where / f"wmplat-{name}"
    assert f"wrote {kind} plugin {name!r} in {package}" in out.stdout
    site = where / "site"
    run(sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
        "--no-index", "--target", str(site), str(package), cwd=where)
    paths = [str(site), str(ROOT), os.environ.get("PYTHONPATH", "")]
    # as for a user who installed it: every entry point loads (the suite limits them)
    return package, {"PYTHONPATH": os.pathsep.join(p for p in paths if p),
                     "WMPLAT_LOAD_PLUGINS": f"{os.environ.get('WMPLAT_LOAD_PLUGINS', '')},{name}"}


@pytest.mark.parametrize("kind", ["method", "metric", "dataset"])
def test_a_generated_package_installs_and_passes_its_own_tests(kind, tmp_path):
    package, env = generate_and_install(kind, f"my-{kind}", tmp_path)
    assert (package / f"wmplat_my_{kind}" / "__init__.py").is_file()
    tests = run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=package,
                env=env)
    assert " passed" in tests.stdout and "failed" not in tests.stdout
    listed = json.loads(run(*WMPLAT, "plugins", "--json", cwd=tmp_path, env=env).stdout)
    assert {"name": f"my-{kind}", "kind": kind, "package": f"wmplat-my-{kind}",
            "version": "0.1.0", "status": "ok"} in listed


def test_the_generated_method_evaluates(tmp_path, default_zoo):
    _, env = generate_and_install("method", "my.gen", tmp_path)
    out = run(*WMPLAT, "evaluate", "--method", "my.gen", "--samples", "8", "--set", "scale=0",
              cwd=tmp_path, env=env)
    rows = json.loads(run(*WMPLAT, "leaderboard", "--format", "json", cwd=tmp_path).stdout)
    [row] = [r for r in rows if r["method"] == "my.gen"]
    assert row["config"] == {"scale": 0.0} and row["n_samples"] == 8
    assert "my.gen" in out.stdout


@pytest.mark.parametrize("args, message", [
    (["--kind", "method", "../escape"], "method name '../escape' is not a valid name"),
    (["--kind", "method", "ok", "--dir", "missing"], "--dir missing is not an existing folder"),
    (["--kind", "sampler", "ok"], "Invalid value for '--kind'"),
])
def test_bad_input_is_one_line_and_writes_nothing(args, message, tmp_path, cli):
    proc = cli("new-plugin", *args, ok=False)
    assert proc.returncode != 0 and message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_existing_package_folder_is_never_overwritten(tmp_path, cli):
    (tmp_path / "wmplat-taken").mkdir()
    (tmp_path / "wmplat-taken" / "mine.txt").write_text("keep")
    proc = cli("new-plugin", "--kind", "metric", "taken", ok=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("error: ") and "already exists" in proc.stderr
    assert [p.name for p in (tmp_path / "wmplat-taken").iterdir()] == ["mine.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wmplat-taken"]
