"""The result store never lies: a row is reused only when it is whole, checks out and was
computed from exactly the same job; anything else is recomputed with a one-line note."""

import json
import shutil
import subprocess

import pytest
import torch
from safetensors.torch import load_file, save_file

ARGS = ("evaluate", "--method", "copycat", "--samples", "8")


def rows(folder):
    """{(method, config_hash): (row without created_at/wall_seconds, per-sample values)}."""
    out = {}
    for path in (folder / "wmplat-results").rglob("result.json"):
        row = json.loads(path.read_text())
        key = (row["method"], row["config_hash"])
        del row["created_at"], row["wall_seconds"]
        out[key] = (row, load_file(path.parent / "per_sample.safetensors"))
    return out


def same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert a[key][0] == b[key][0], key
        assert a[key][1].keys() == b[key][1].keys(), key
        for name in a[key][1]:
            assert torch.equal(a[key][1][name], b[key][1][name]), (key, name)


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, default_zoo):
    """The folder of one untouched evaluation."""
    from conftest import Cli

    folder = tmp_path_factory.mktemp("clean")
    Cli(folder)(*ARGS)
    return folder


@pytest.fixture
def clean(evaluated):
    """The rows of one untouched evaluation."""
    return rows(evaluated)


def evaluate_once(cli, evaluated):
    """What `wmplat evaluate` with ARGS leaves in the test's folder: the module's evaluation,
    copied."""
    shutil.copytree(evaluated / "wmplat-results", cli.cwd / "wmplat-results")


def fresh_folder(cli):
    [folder] = (cli.cwd / "wmplat-results").glob("*/fresh/reference")
    return folder


@pytest.mark.parametrize("damage", ["other keys", "fewer keys", "wrong length", "garbage",
                                    "missing"])
def test_a_damaged_fresh_row_is_recomputed_not_trusted(cli, evaluated, clean, damage):
    evaluate_once(cli, evaluated)
    path = fresh_folder(cli) / "per_sample.safetensors"
    values = load_file(path)
    if damage == "other keys":
        save_file({"x": torch.zeros(32)}, path)
    elif damage == "fewer keys":
        save_file({k: v for k, v in values.items() if k != "max_similarity"}, path)
    elif damage == "wrong length":
        save_file({k: v[:-1].contiguous() for k, v in values.items()}, path)
    elif damage == "garbage":
        path.write_bytes(b"not safetensors")
    else:
        path.unlink()
    for other in list((cli.cwd / "wmplat-results").rglob("result.json")):
        if other.parent != path.parent:
            shutil.rmtree(other.parent)   # every other row is judged against the null anew
    proc = cli(*ARGS)
    assert "Traceback" not in proc.stderr
    assert "recomputing: the stored row does not check out: " in proc.stderr
    assert str(path.relative_to(cli.cwd)) in proc.stderr
    same(rows(cli.cwd), clean)
    cli("leaderboard", "--format", "html")   # the report reads every row


@pytest.mark.parametrize("field, value", [("config", {"sigma": 9}), ("n_samples", 7),
                                          ("method_version", "0.0.1"), ("zoo_revision", "x")])
def test_a_stored_row_of_another_job_is_recomputed(cli, evaluated, clean, field, value):
    evaluate_once(cli, evaluated)
    [path] = (cli.cwd / "wmplat-results").rglob("copycat/*/result.json")
    row = json.loads(path.read_text())
    row[field] = value
    path.write_text(json.dumps(row))
    if field == "n_samples":   # keep the per-sample values consistent with the row
        values = load_file(path.parent / "per_sample.safetensors")
        save_file({k: v[:7].contiguous() for k, v in values.items()},
                  path.parent / "per_sample.safetensors")
    proc = cli(*ARGS)
    where = path.parent.relative_to(cli.cwd)
    assert f"recomputing {where}: its {field} is {value!r}" in proc.stderr
    same(rows(cli.cwd), clean)


def test_two_revisions_of_one_zoo_keep_their_own_rows(cli, default_zoo, tmp_path):
    other = tmp_path / "other-revision"
    shutil.copytree(default_zoo, other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["license"] = "CC0-1.0"   # another manifest: another revision, same weights
    (other / "manifest.json").write_text(json.dumps(manifest))
    cli("evaluate", "--method", "copycat", "--samples", "8", "--zoo", str(default_zoo))
    cli("evaluate", "--method", "copycat", "--samples", "8", "--zoo", str(other))
    results = [json.loads(p.read_text()) for p in
               (cli.cwd / "wmplat-results").rglob("copycat/*/result.json")]
    assert len({r["zoo_revision"] for r in results}) == 2
    assert len({r["zoo"] for r in results}) == 1
    proc = cli("evaluate", "--method", "copycat", "--samples", "8", "--zoo", str(default_zoo))
    assert proc.stderr.count("reusing") == 10


def bad_store(cli, *extra):
    proc = cli(*ARGS, *extra, ok=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    [line] = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
    return line


def test_a_result_json_that_is_a_folder_is_one_line_and_left_alone(cli, evaluated):
    evaluate_once(cli, evaluated)
    [path] = (cli.cwd / "wmplat-results").rglob("copycat/*/result.json")
    path.unlink()
    (path / "keep.txt").parent.mkdir()
    (path / "keep.txt").write_text("mine")
    line = bad_store(cli)
    assert f"{path.parent.relative_to(cli.cwd)} exists and is not a folder wmplat wrote; " \
        "refusing to replace it" in line
    assert (path / "keep.txt").read_text() == "mine"


def test_a_results_dir_that_is_a_file_is_refused_before_any_work(cli):
    (cli.cwd / "taken").write_text("a file")
    line = bad_store(cli, "--results-dir", "taken")
    assert line == "error: --results-dir taken is a file, not a folder; choose a folder"


def test_a_results_dir_inside_a_file_is_refused(cli):
    (cli.cwd / "taken").write_text("a file")
    line = bad_store(cli, "--results-dir", "taken/results")
    assert line.startswith("error: cannot write results under taken/results: Not a directory")


def in_small_mount(cli, options: str, *args) -> subprocess.CompletedProcess:
    """Run wmplat with --results-dir on a fresh tmpfs mounted with `options`, in a user and
    mount namespace of its own (nothing is mounted on the machine)."""
    if shutil.which("unshare") is None or subprocess.run(
            ["unshare", "-rm", "true"], capture_output=True).returncode != 0:
        pytest.skip("user namespaces (unshare -rm) are not available here")
    mount = cli.cwd / "mnt"
    mount.mkdir()
    # after wmplat exits, list what it left on the mount (which ends with the namespace)
    script = (f'mount -t tmpfs -o {options} tmpfs "{mount}" || exit 99; "$0" "$@"; rc=$?; '
              f'echo LEFT; find "{mount}" -mindepth 1; exit $rc')
    from conftest import WMPLAT

    return subprocess.run(["unshare", "-rm", "sh", "-c", script, WMPLAT, *args,
                           "--results-dir", str(mount / "results")],
                          cwd=cli.cwd, capture_output=True, text=True, timeout=600)


def left_on_mount(proc) -> list[str]:
    return proc.stdout.split("LEFT\n", 1)[1].split()


def test_a_read_only_file_system_is_one_line(cli, default_zoo):
    proc = in_small_mount(cli, "ro,size=1m", *ARGS)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "cannot write results under" in proc.stderr
    assert "Read-only file system; choose a writable --results-dir" in proc.stderr


def test_a_full_disk_is_one_line_and_leaves_no_half_written_row(cli, default_zoo):
    proc = in_small_mount(cli, "size=40k", *ARGS)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    [line] = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
    assert "No space left on device; free space or choose another --results-dir" in line
    assert "(nothing was written for this row)" in line
    left = left_on_mount(proc)
    assert not [p for p in left if "/." in p and not p.endswith(".lock")], left  # no temporary
    rows_left = {p.rsplit("/", 1)[0] for p in left if p.endswith(".safetensors")}
    assert all(f"{r}/result.json" in left for r in rows_left), left   # every row is whole
