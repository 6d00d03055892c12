"""A name is never a path: zoo, task, method, baseline, dataset and metric names follow one rule
(wmplat/names.py) wherever they come from, and a zoo's files stay inside its folder."""

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import yaml

RULE = ("is not a valid name: use letters, digits, '.', '_' and '-', starting with a letter or "
        "digit (no '..', at most 100 characters)")
BAD_NAMES = ["..", ".", "../x", "/abs", "a b", "", ".hidden", "a..b", "a/b", "a\\b", "-x", "é",
             "a" * 101]


def one_line_error(proc) -> str:
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def write_yaml(path: Path, data) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def registry(path: Path, name: str, task: str = "digits-mlp") -> Path:
    return write_yaml(path, {"schema_version": 1, "zoos": {
        name: {"source": "local", "task": task, "description": "crafted"}}})


# --- registry files ------------------------------------------------------------------------

@pytest.fixture
def home(tmp_path) -> Path:
    """A private, empty $WMPLAT_HOME, with a file in each folder a crafted name could reach."""
    home = tmp_path / "home"
    for folder in (tmp_path / "victim", home / "zoos" / "kept", home / "data"):
        folder.mkdir(parents=True)
        (folder / "precious.txt").write_text("keep me")
    return home


def assert_untouched(tmp_path: Path) -> None:
    for folder in (tmp_path / "victim", tmp_path / "home" / "zoos" / "kept",
                   tmp_path / "home" / "data"):
        assert (folder / "precious.txt").read_text() == "keep me", folder


@pytest.mark.parametrize("name, command", [
    ("../../victim", ("evaluate", "--method", "replica", "--samples", "4", "--zoo")),
    ("../../victim", ("zoo", "info")),
    ("../../victim", ("zoo", "build")),
    ("VICTIM", ("zoo", "build")),          # the victim's absolute path
    (".", ("zoo", "build")),               # would replace all of $WMPLAT_HOME/zoos
    ("..", ("zoo", "info")),               # would replace $WMPLAT_HOME
])
def test_a_registry_zoo_named_like_a_path_is_refused_and_nothing_is_replaced(
        cli, tmp_path, home, name, command):
    name = str(tmp_path / "victim") if name == "VICTIM" else name
    path = registry(tmp_path / "zoos.yaml", name)
    proc = cli("--registry", str(path), *command, name, env={"WMPLAT_HOME": str(home)}, ok=False)
    # `zoo build` refuses the name it is given before it reads the registry
    assert f"zoo name {name!r} {RULE}" in one_line_error(proc)
    assert_untouched(tmp_path)
    assert not (cli.cwd / "wmplat-results").exists()


@pytest.mark.parametrize("how", ["--registry", "WMPLAT_REGISTRY"])
def test_a_registry_file_naming_a_zoo_like_a_path_is_refused_naming_the_file(cli, tmp_path,
                                                                            home, how):
    path = registry(tmp_path / "zoos.yaml", "../../victim")
    env = {"WMPLAT_HOME": str(home)}
    args = ("--registry", str(path)) if how == "--registry" else ()
    env.update({} if args else {"WMPLAT_REGISTRY": str(path)})
    proc = cli(*args, "zoo", "list", env=env, ok=False)
    assert one_line_error(proc) == \
        f"error: {path}: zoos: Value error, zoo name '../../victim' {RULE}"


def test_a_registry_entry_whose_task_is_not_a_name_is_refused(cli, tmp_path, home):
    path = registry(tmp_path / "zoos.yaml", "mine", task="../x")
    proc = cli("--registry", str(path), "zoo", "list", env={"WMPLAT_HOME": str(home)}, ok=False)
    assert f"{path}: zoos.mine.task: Value error, '../x' {RULE}" in one_line_error(proc)


def test_every_shipped_and_test_plugin_name_is_valid(cli):
    """The built-ins, copycat and wmplat-misbehaving (e.g. `wrong-shape`, `peek-heldout`) load
    without a failure, and so do the zoos the built-in registry names."""
    rows = cli.json("plugins", "--json")
    assert not [r for r in rows if r["kind"] == "plugin"], rows
    assert {"digits-mlp", "wrong-shape", "peek-heldout", "max_similarity"} <= \
        {r["name"] for r in rows}
    assert "digits-mlp" in cli("zoo", "list").stdout


# --- manifests -----------------------------------------------------------------------------

def manifest_of(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def write_manifest(folder: Path, manifest: dict) -> None:
    (folder / "manifest.json").write_text(json.dumps(manifest))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def zoo_copy(default_zoo, tmp_path) -> Path:
    folder = tmp_path / "zoos" / "my-zoo"
    shutil.copytree(default_zoo, folder)
    return folder


def with_manifest(folder: Path, **changes) -> Path:
    write_manifest(folder, {**manifest_of(folder), **changes})
    return folder


@pytest.mark.parametrize("field, bad", [*(("name", bad) for bad in BAD_NAMES),
                                        ("task", "../x"), ("task", "a b"), ("task", "..")])
def test_a_manifest_name_or_task_that_is_not_a_name_is_refused(cli, zoo_copy, field, bad):
    with_manifest(zoo_copy, **{field: bad})
    error = one_line_error(cli("zoo", "info", str(zoo_copy), ok=False))
    assert f"{zoo_copy / 'manifest.json'}: {field}: Value error, {bad!r} {RULE}" in error


def test_a_manifest_named_dotdot_writes_nothing_outside_the_results_folder(cli, zoo_copy,
                                                                             tmp_path):
    with_manifest(zoo_copy, name="..")
    results = tmp_path / "out" / "results"
    proc = cli("evaluate", "--method", "replica", "--samples", "4", "--zoo", str(zoo_copy),
               "--results-dir", str(results), ok=False)
    assert "manifest.json: name: Value error, '..' is not a valid name" in one_line_error(proc)
    assert not (tmp_path / "out").exists()


def test_a_zoo_name_is_its_results_folder_as_it_is(cli, zoo_copy, tmp_path):
    """No lossy mapping: a valid name is the folder's name, character for character."""
    with_manifest(zoo_copy, name="My.Zoo_2-b")
    results = tmp_path / "results"
    cli("evaluate", "--method", "replica", "--samples", "4", "--zoo", str(zoo_copy),
        "--results-dir", str(results))
    revision = cli.json("leaderboard", "--format", "json", "--results-dir",
                        str(results))[0]["zoo_revision"]
    assert sorted(p.name for p in results.iterdir()) == [f"My.Zoo_2-b@{revision[:16]}"]
    assert {r["zoo"] for r in cli.json("leaderboard", "--format", "json", "--results-dir",
                                       str(results))} == {"My.Zoo_2-b"}


def outside_file(tmp_path: Path, default_zoo: Path) -> Path:
    secret = tmp_path / "secret.safetensors"
    shutil.copyfile(default_zoo / "weights.safetensors", secret)
    return secret


def with_file(folder: Path, path: str, digest: str) -> Path:
    manifest = manifest_of(folder)
    manifest["files"].append({"path": path, "sha256": digest})
    write_manifest(folder, manifest)
    return folder


@pytest.mark.parametrize("path", ["ABSOLUTE", "../secret.safetensors", "./weights.safetensors",
                                  "sub/../weights.safetensors", "..\\secret.safetensors",
                                  "sub//weights.safetensors", "", "C:secret.safetensors"])
def test_a_listed_file_outside_the_zoo_folder_is_refused(cli, zoo_copy, default_zoo, tmp_path,
                                                         path):
    secret = outside_file(tmp_path / "zoos", default_zoo)
    path = str(secret) if path == "ABSOLUTE" else path
    with_file(zoo_copy, path, sha256(secret))
    error = one_line_error(cli("zoo", "info", str(zoo_copy), ok=False))
    assert f"{zoo_copy / 'manifest.json'}: files.1.path: Value error, {path!r} is not a path " \
           "inside the zoo folder: write it relative to the folder" in error


@pytest.mark.parametrize("link", ["weights.safetensors", "extra.safetensors"])
def test_a_listed_file_that_links_outside_the_zoo_folder_is_refused(cli, zoo_copy, default_zoo,
                                                                    tmp_path, link):
    secret = outside_file(tmp_path, default_zoo)
    (zoo_copy / link).unlink(missing_ok=True)
    (zoo_copy / link).symlink_to(secret)
    if link != "weights.safetensors":
        with_file(zoo_copy, link, sha256(secret))
    error = one_line_error(cli("zoo", "info", str(zoo_copy), ok=False))
    assert error == f"error: {zoo_copy / link}: leads outside the zoo folder " \
                    f"(to {secret.resolve()}); " \
                    "a zoo's files must be in its folder, not links to elsewhere"


def test_a_listed_file_in_a_linked_folder_outside_is_refused(cli, zoo_copy, default_zoo,
                                                             tmp_path):
    secret = outside_file(tmp_path, default_zoo)
    (zoo_copy / "sub").symlink_to(tmp_path)
    with_file(zoo_copy, "sub/secret.safetensors", sha256(secret))
    error = one_line_error(cli("zoo", "info", str(zoo_copy), ok=False))
    assert f"sub/secret.safetensors: leads outside the zoo folder (to {secret.resolve()})" \
        in error


def test_a_link_that_stays_inside_the_zoo_folder_is_accepted(cli, zoo_copy):
    (zoo_copy / "data").mkdir()
    (zoo_copy / "weights.safetensors").rename(zoo_copy / "data" / "weights.safetensors")
    (zoo_copy / "weights.safetensors").symlink_to(Path("data") / "weights.safetensors")
    assert "64 runs" in cli("zoo", "info", str(zoo_copy)).stdout


def test_a_zoo_listing_a_file_outside_its_folder_is_not_pushed(cli_process, hub, zoo_copy,
                                                               default_zoo, tmp_path):
    secret = outside_file(tmp_path, default_zoo)
    with_file(zoo_copy, str(secret), sha256(secret))
    proc = cli_process("zoo", "push", str(zoo_copy), "--repo", "wmplat-tester/leak", ok=False)
    assert "is not a path inside the zoo folder" in one_line_error(proc)
    assert hub.repo_ids() == []


# --- plugins -------------------------------------------------------------------------------

def test_a_plugin_class_whose_name_is_not_a_name_fails_its_plugin(cli, install_plugin):
    env = install_plugin("wmplat-badname")
    rows = cli.json("plugins", "--json", env=env)
    [failed] = [r for r in rows if r["kind"] == "plugin"]
    assert failed["name"] == "badname" and failed["package"] == "wmplat-badname"
    for problem in (f"method name '../escape' of class Escape {RULE}",
                    f"dataset name '..' of class Parent {RULE}",
                    f"metric name 'a b' of class Spaced {RULE}"):
        assert problem in failed["status"]
    names = {r["name"] for r in rows if r["kind"] != "plugin"}
    assert "well-named" in names and not {"../escape", "..", "a b"} & names
    zoos = [line.split()[0] for line in cli("zoo", "list", env=env).stdout.splitlines()]
    assert zoos == ["digits-mlp"]


# --- the command line ----------------------------------------------------------------------

@pytest.mark.parametrize("bad", ["../x", "a b", "/abs"])
def test_a_method_that_is_not_a_name_is_refused(cli, bad):
    proc = cli("evaluate", "--method", bad, ok=False)
    assert one_line_error(proc) == f"error: method name {bad!r} given to --method {RULE}"


@pytest.mark.parametrize("command", [("evaluate", "--method", "replica", "--zoo"),
                                     ("zoo", "info"), ("zoo", "build"), ("zoo", "pull")])
def test_a_zoo_that_is_neither_a_name_nor_a_folder_is_refused(cli, command):
    proc = cli(*command, "a b", ok=False)
    assert one_line_error(proc) == \
        f"error: zoo name 'a b' {RULE}; or give the path of a zoo folder"


# --- results -------------------------------------------------------------------------------

def a_result(**changes) -> dict:
    return {"schema_version": 1, "method": "copycat", "kind": "method",
            "method_version": "0.1.0", "zoo": "digits-mlp", "zoo_revision": "local-b8f069593eb5",
            "task": "digits-mlp", "n_samples": 16, "seed": 0, "config": {},
            "config_hash": "44136fa355b3", "metrics": {}, "verdict": None,
            "environment": {"wmplat": "0.1.0", "torch": "2.4.0", "python": "3.11.7"},
            "created_at": "2026-11-27T19:23:30.026622Z", "wall_seconds": 0.335, **changes}


def write_result(results: Path, row: dict) -> Path:
    path = results / "digits-mlp" / "copycat" / "44136fa355b3-seed0-n16" / "result.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(row))
    return path


def test_a_valid_crafted_result_is_read(cli, tmp_path):
    write_result(tmp_path / "results", a_result())
    rows = cli.json("leaderboard", "--format", "json", "--results-dir", str(tmp_path / "results"))
    assert [r["method"] for r in rows] == ["copycat"]


@pytest.mark.parametrize("field, bad, message", [
    ("method", "../../escape", f"'../../escape' {RULE}"),
    ("zoo", "a b", f"'a b' {RULE}"),
    ("task", "..", f"'..' {RULE}"),
    ("zoo_revision", "../../../x", f"'../../../x' {RULE}"),
    ("config_hash", "../../x", "must be 12 lowercase hex digits"),
])
def test_a_result_with_a_field_that_would_be_a_path_is_refused(cli, tmp_path, field, bad,
                                                               message):
    path = write_result(tmp_path / "results", a_result(**{field: bad}))
    for args in (("leaderboard",), ("leaderboard", "push", "--repo", "wmplat-tester/results")):
        proc = cli(*args, "--results-dir", str(tmp_path / "results"), ok=False)
        assert one_line_error(proc) == f"error: {path}: {field}: Value error, {message}"


def test_a_results_folder_is_always_three_names_inside_the_results_dir(tmp_path):
    from wmplat.errors import ResultError
    from wmplat.evaluation.store import result_folder

    assert result_folder(tmp_path, "a.b", "a_b", "44136fa355b3", 0, 4) == \
        tmp_path / "a.b" / "a_b" / "44136fa355b3-seed0-n4"
    for zoo, method in (("..", "m"), ("z", "../m"), ("/abs", "m"), ("z", "."), ("a/b", "m")):
        with pytest.raises(ResultError, match="do not make a folder inside"):
            result_folder(tmp_path, zoo, method, "44136fa355b3", 0, 4)
