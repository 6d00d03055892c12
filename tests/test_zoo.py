"""The zoo format: the default zoo as shipped, how the cache installs, builds and replaces it,
and every way a zoo on disk can be wrong."""

import hashlib
import itertools
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from conftest import WMPLAT
from killing import KILLED, run_killed_cli
from safetensors.torch import load_file, save_file

import wmplat
from wmplat.tasks.digits_mlp import SHIPPED_MANIFEST_SHA256


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest_of(folder):
    return json.loads((folder / "manifest.json").read_text())


def test_default_zoo_is_split_by_run_with_distinct_seeds(default_zoo):
    manifest = manifest_of(default_zoo)
    assert manifest["schema_version"] == 1 and manifest["task"] == "digits-mlp"
    runs = {split: {m["run"] for m in manifest["models"] if m["split"] == split}
            for split in ("train", "heldout")}
    assert len(runs["train"]) >= 64 and len(runs["heldout"]) >= 32
    assert not runs["train"] & runs["heldout"]
    seed_of_run = {m["run"]: m["seed"] for m in manifest["models"]}
    assert len(set(seed_of_run.values())) == len(seed_of_run)
    per_run = [sum(m["run"] == r for m in manifest["models"]) for r in seed_of_run]
    assert min(per_run) >= 2, "several checkpoints along each run"


def test_default_zoo_weights_match_manifest(default_zoo):
    manifest = manifest_of(default_zoo)
    [record] = manifest["files"]
    assert record["path"] == "weights.safetensors"
    assert record["sha256"] == sha256(default_zoo / "weights.safetensors")
    tensors = load_file(default_zoo / "weights.safetensors")
    n = len(manifest["models"])
    assert {p["name"]: [n, *p["shape"]] for p in manifest["param_spec"]} == \
        {k: list(v.shape) for k, v in tensors.items()}
    assert sum(v[0].numel() for v in tensors.values()) == 2410
    assert all(v.dtype == torch.float32 for v in tensors.values())
    quality = torch.tensor([m["quality"] for m in manifest["models"]])
    assert quality.min() > 0.9, "every checkpoint is a trained classifier"


def test_zoo_info_summarises_the_zoo(cli, default_zoo):
    out = cli("zoo", "info", "digits-mlp").stdout
    assert "64 runs" in out and "32 runs" in out and "params   2,410" in out


def test_zoo_list_shows_the_default_zoo_as_cached(cli, default_zoo):
    out = cli("zoo", "list").stdout
    assert "digits-mlp" in out and "cached" in out and "not cached" not in out


def test_zoo_build_says_whether_this_machine_reproduces_the_shipped_zoo(cli, tmp_path):
    home = tmp_path / "home"
    proc = cli("zoo", "build", "digits-mlp", env={"WMPLAT_HOME": str(home)})
    built = home / "zoos" / "digits-mlp"
    assert proc.stdout.strip() == str(built)
    assert installed_revision(cli, home) == revision(built)
    if "reproduces the shipped zoo 'digits-mlp' bit for bit" in proc.stderr:
        assert f"(revision {SHIPPED_REVISION})" in proc.stderr
        assert files_of(built) == files_of(SHIPPED)
    else:  # another machine's floating point: it says by how much, and how to go back
        match = re.search(r"does not reproduce the shipped zoo 'digits-mlp' bit for bit: "
                          r"max \|Δw\| = (\S+), revision (local-\w+) instead of "
                          + SHIPPED_REVISION, proc.stderr)
        assert match and float(match[1]) > 0 and match[2] == revision(built), proc.stderr
        assert "wmplat zoo build digits-mlp --shipped" in proc.stderr
        assert manifest_of(built)["models"][0]["id"] == manifest_of(SHIPPED)["models"][0]["id"]


# --- the shipped zoo ------------------------------------------------------------------------

SHIPPED = Path(wmplat.__file__).parent / "tasks" / "zoos" / "digits-mlp"
SHIPPED_REVISION = "local-" + SHIPPED_MANIFEST_SHA256[:12]


def revision(folder):
    return "local-" + sha256(folder / "manifest.json")[:12]


def files_of(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def installed_revision(cli, home, name="digits-mlp", env=None):
    out = cli("zoo", "info", name, env={**(env or {}), "WMPLAT_HOME": str(home)}).stdout
    return re.search(r"\(revision (local-\w+)\)", out)[1]


def test_the_shipped_zoo_is_the_one_its_task_pins(default_zoo):
    assert sha256(SHIPPED / "manifest.json") == SHIPPED_MANIFEST_SHA256
    assert files_of(default_zoo) == files_of(SHIPPED)


def test_first_use_installs_the_shipped_zoo_without_training(cli, tmp_path):
    home = tmp_path / "home"
    proc = cli("zoo", "info", "digits-mlp", env={"WMPLAT_HOME": str(home)})
    assert f"(revision {SHIPPED_REVISION})" in proc.stdout
    assert "installing the shipped zoo 'digits-mlp'" in proc.stderr
    assert "building" not in proc.stderr and "training" not in proc.stderr
    assert files_of(home / "zoos" / "digits-mlp") == files_of(SHIPPED)
    assert sorted(os.listdir(home / "zoos")) == [".digits-mlp.lock", "digits-mlp"]


def test_a_zoo_trained_by_an_older_version_of_the_task_is_replaced(cli, tmp_path, default_zoo):
    cached = tmp_path / "home" / "zoos" / "digits-mlp"
    shutil.copytree(default_zoo, cached)
    manifest = manifest_of(cached)
    manifest["provenance"]["task_version"] = "1"
    write_manifest(cached, manifest)
    assert installed_revision(cli, tmp_path / "home") == SHIPPED_REVISION


def test_a_tampered_cached_copy_is_refused_and_can_be_reinstalled(cli, tmp_path, default_zoo):
    home = tmp_path / "home"
    cached = home / "zoos" / "digits-mlp"
    shutil.copytree(default_zoo, cached)
    data = bytearray((cached / "weights.safetensors").read_bytes())
    data[-5] ^= 0x01
    (cached / "weights.safetensors").write_bytes(bytes(data))
    env = {"WMPLAT_HOME": str(home)}
    proc = cli("zoo", "info", "digits-mlp", env=env, ok=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "weights.safetensors: sha256 does not match manifest.json" in proc.stderr
    assert "`wmplat zoo build digits-mlp --shipped` reinstalls it" in proc.stderr
    assert cli("zoo", "build", "digits-mlp", "--shipped", env=env).stdout.strip() == str(cached)
    assert installed_revision(cli, home) == SHIPPED_REVISION


def test_a_folder_wmplat_did_not_write_is_never_replaced(cli, tmp_path):
    home = tmp_path / "home"
    folder = home / "zoos" / "digits-mlp"
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("mine")
    env = {"WMPLAT_HOME": str(home)}
    for command in (["zoo", "info", "digits-mlp"], ["zoo", "build", "digits-mlp", "--shipped"]):
        proc = cli(*command, env=env, ok=False)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr
        assert f"error: {folder} exists and is not a folder wmplat wrote" in proc.stderr
    assert os.listdir(folder) == ["notes.txt"]
    assert sorted(os.listdir(home / "zoos")) == [".digits-mlp.lock", "digits-mlp"]


@pytest.mark.parametrize("when", ["before", "after"])
def test_an_install_killed_at_any_rename_never_loses_the_zoo(cli, tmp_path, default_zoo, when):
    old = tmp_path / "old"
    shutil.copytree(default_zoo, old)
    manifest = manifest_of(old)
    manifest["license"] = "MIT"           # another valid zoo, with a revision of its own
    write_manifest(old, manifest)
    home = tmp_path / "home"
    env = {**os.environ, "WMPLAT_HOME": str(home)}
    for k in itertools.count(1):
        shutil.rmtree(home, ignore_errors=True)
        shutil.copytree(old, home / "zoos" / "digits-mlp")
        proc = run_killed_cli(["zoo", "build", "digits-mlp", "--shipped"], k, when, env=env)
        if proc.returncode == 0:
            break
        assert proc.returncode == KILLED, proc.stderr
        # the next run finds the new zoo if it was in place, else the old one, never none
        cached = home / "zoos" / "digits-mlp"
        replaced = cached.is_dir() and files_of(cached) == files_of(SHIPPED)
        expected = SHIPPED_REVISION if replaced else revision(old)
        assert installed_revision(cli, home) == expected
        cli("zoo", "build", "digits-mlp", "--shipped", env={"WMPLAT_HOME": str(home)})
        assert files_of(home / "zoos" / "digits-mlp") == files_of(SHIPPED)
        assert sorted(os.listdir(home / "zoos")) == [".digits-mlp.lock", "digits-mlp"]
    assert k >= 3, "the install renames twice: old zoo aside, new one in"
    assert files_of(home / "zoos" / "digits-mlp") == files_of(SHIPPED)


def test_two_first_uses_at_once_install_the_zoo_once(tmp_path):
    env = {**os.environ, "WMPLAT_HOME": str(tmp_path / "home")}
    procs = [subprocess.Popen([WMPLAT, "zoo", "info", "digits-mlp"], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert all(f"(revision {SHIPPED_REVISION})" in out for out, _ in outs)
    assert sum(err.count("installing the shipped zoo") for _, err in outs) == 1


# --- the shipped-zoo hook, through a third-party task -------------------------------------------

def start_cli(*args, env):
    return subprocess.Popen([WMPLAT, *args], env={**os.environ, **env}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.fixture
def blobs(install_plugin, tmp_path):
    """The env for the task blobs-shipped, which trains in a private home."""
    return {**install_plugin("wmplat-shipped"), "WMPLAT_HOME": str(tmp_path / "home")}


def ship(folder, env):
    return {**env, "WMPLAT_TEST_SHIPPED": str(folder),
            "WMPLAT_TEST_SHIPPED_SHA256": sha256(folder / "manifest.json")}


@pytest.fixture
def shipped_blobs(cli, blobs, tmp_path):
    """A zoo of blobs-shipped trained here and shipped, and the env that ships it."""
    cli("zoo", "build", "blobs-shipped", env=blobs)
    shipped = tmp_path / "shipped"
    shutil.copytree(tmp_path / "home" / "zoos" / "blobs-shipped", shipped)
    shutil.rmtree(tmp_path / "home")
    return shipped, ship(shipped, blobs)


def test_a_task_s_build_is_compared_with_its_shipped_zoo(cli, tmp_path, shipped_blobs):
    shipped, env = shipped_blobs
    proc = cli("zoo", "build", "blobs-shipped", env=env)
    assert (f"reproduces the shipped zoo 'blobs-shipped' bit for bit (revision "
            f"{revision(shipped)})") in proc.stderr
    tensors = read_weights(shipped)
    tensors["bias"][0, 1] += 0.5
    rewrite_weights(shipped, tensors)
    env = ship(shipped, env)
    proc = cli("zoo", "build", "blobs-shipped", env=env)
    ours = revision(tmp_path / "home" / "zoos" / "blobs-shipped")
    assert (f"does not reproduce the shipped zoo 'blobs-shipped' bit for bit: max |Δw| = 0.5, "
            f"revision {ours} instead of {revision(shipped)}; the cache now holds this "
            "machine's build") in proc.stderr
    assert installed_revision(cli, tmp_path / "home", "blobs-shipped", env) == ours
    cli("zoo", "build", "blobs-shipped", "--shipped", env=env)
    assert installed_revision(cli, tmp_path / "home", "blobs-shipped", env) == revision(shipped)


@pytest.mark.parametrize("tamper", ["weights", "manifest"])
def test_a_tampered_shipped_zoo_is_refused(cli, tmp_path, shipped_blobs, tamper):
    shipped, env = shipped_blobs
    if tamper == "weights":
        data = bytearray((shipped / "weights.safetensors").read_bytes())
        data[-1] ^= 0x01
        (shipped / "weights.safetensors").write_bytes(bytes(data))
        expected = "weights.safetensors: sha256 does not match manifest.json"
    else:
        manifest = manifest_of(shipped)
        manifest["license"] = "CC0"
        write_manifest(shipped, manifest)
        expected = "that task 'blobs-shipped' pins; the shipped zoo was modified or is corrupt"
    proc = cli("zoo", "info", "blobs-shipped", env=env, ok=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert expected in proc.stderr
    assert os.listdir(tmp_path / "home" / "zoos") == [".blobs-shipped.lock"], "nothing installed"


def test_two_first_uses_at_once_build_a_zoo_once(blobs):
    env = {**blobs, "WMPLAT_TEST_BUILD_SECONDS": "4"}
    procs = [start_cli("zoo", "info", "blobs-shipped", env=env) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    errs = "".join(err for _, err in outs)
    assert errs.count("building zoo 'blobs-shipped'") == 1
    assert "waiting for another wmplat process" in errs


def test_two_builds_at_once_both_succeed(blobs, tmp_path):
    env = {**blobs, "WMPLAT_TEST_BUILD_SECONDS": "2"}
    procs = [start_cli("zoo", "build", "blobs-shipped", env=env) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert "".join(err for _, err in outs).count("built zoo 'blobs-shipped'") == 2
    assert sorted(os.listdir(tmp_path / "home" / "zoos")) == [".blobs-shipped.lock",
                                                               "blobs-shipped"]


@pytest.fixture
def zoo_copy(default_zoo, tmp_path):
    folder = tmp_path / "my-zoo"
    shutil.copytree(default_zoo, folder)
    return folder


def write_manifest(folder, manifest):
    (folder / "manifest.json").write_text(json.dumps(manifest))


def read_weights(folder):
    """The zoo's tensors as copies (load_file maps the file, which is about to be rewritten)."""
    return {k: v.clone() for k, v in load_file(folder / "weights.safetensors").items()}


def rewrite_weights(folder, tensors):
    save_file(tensors, folder / "weights.safetensors")
    manifest = manifest_of(folder)
    manifest["files"][0]["sha256"] = sha256(folder / "weights.safetensors")
    write_manifest(folder, manifest)


def zoo_error(cli, folder):
    proc = cli("evaluate", "--method", "replica", "--zoo", str(folder), "--samples", "4", ok=False)
    assert proc.returncode == 1, proc.stderr
    assert not (cli.cwd / "wmplat-results").exists(), "nothing written for a bad zoo"
    assert "Traceback" not in proc.stderr
    return proc.stderr


def test_a_zoo_folder_given_by_path_is_evaluated(cli, zoo_copy):
    proc = cli("evaluate", "--method", "replica", "--zoo", str(zoo_copy), "--samples", "4")
    assert "replica" in proc.stdout


def test_tampered_weights_are_rejected(cli, zoo_copy):
    weights = zoo_copy / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0x01
    weights.write_bytes(bytes(data))
    err = zoo_error(cli, zoo_copy)
    assert "weights.safetensors: sha256 does not match manifest.json" in err


def test_a_missing_weights_file_is_named(cli, zoo_copy):
    (zoo_copy / "weights.safetensors").unlink()
    assert "weights.safetensors: listed in manifest.json but missing" in zoo_error(cli, zoo_copy)


@pytest.mark.parametrize("field", ["license", "task", "param_spec", "models"])
def test_a_manifest_missing_a_field_is_rejected_naming_it(cli, zoo_copy, field):
    manifest = manifest_of(zoo_copy)
    del manifest[field]
    write_manifest(zoo_copy, manifest)
    err = zoo_error(cli, zoo_copy)
    assert "manifest.json" in err and f"{field}: Field required" in err


def test_a_manifest_with_a_wrong_shape_is_rejected(cli, zoo_copy):
    manifest = manifest_of(zoo_copy)
    manifest["param_spec"][0]["shape"] = [32, 63]
    write_manifest(zoo_copy, manifest)
    err = zoo_error(cli, zoo_copy)
    assert "param_spec" in err and "does not match the architecture" in err


def test_weights_of_a_wrong_shape_are_rejected(cli, zoo_copy):
    tensors = read_weights(zoo_copy)
    tensors["fc2.bias"] = tensors["fc2.bias"][:, :9].contiguous()
    rewrite_weights(zoo_copy, tensors)
    err = zoo_error(cli, zoo_copy)
    assert "tensor 'fc2.bias' has shape" in err and "expected [480, 10]" in err


def test_nan_weights_in_a_zoo_are_rejected(cli, zoo_copy):
    tensors = read_weights(zoo_copy)
    tensors["fc1.bias"][3, 0] = float("nan")
    rewrite_weights(zoo_copy, tensors)
    assert "NaN or infinite" in zoo_error(cli, zoo_copy)


def test_a_pickled_weights_file_is_refused_not_loaded(cli, zoo_copy):
    weights = zoo_copy / "weights.safetensors"
    torch.save(read_weights(zoo_copy), weights)  # a pickle, with its hash recorded as if valid
    manifest = manifest_of(zoo_copy)
    manifest["files"][0]["sha256"] = sha256(weights)
    write_manifest(zoo_copy, manifest)
    assert "not a readable safetensors file" in zoo_error(cli, zoo_copy)


def test_a_run_in_both_splits_is_rejected(cli, zoo_copy):
    manifest = manifest_of(zoo_copy)
    heldout = next(m for m in manifest["models"] if m["split"] == "heldout")
    heldout["run"] = manifest["models"][0]["run"]
    write_manifest(zoo_copy, manifest)
    assert "appear in both splits" in zoo_error(cli, zoo_copy)


def test_a_manifest_from_a_newer_wmplat_is_refused(cli, zoo_copy):
    manifest = manifest_of(zoo_copy)
    manifest["schema_version"] = 2
    write_manifest(zoo_copy, manifest)
    assert "schema_version 2 is newer than this wmplat reads" in zoo_error(cli, zoo_copy)


def test_a_manifest_that_is_not_json_is_named(cli, zoo_copy):
    (zoo_copy / "manifest.json").write_text("{not json")
    assert "manifest.json: not valid JSON" in zoo_error(cli, zoo_copy)
