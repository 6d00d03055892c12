"""The zoo format: the default zoo as built, and every way a zoo on disk can be wrong."""

import hashlib
import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file


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
    assert "64 runs" in out and "32 runs" in out and "2410 parameters" in out


def test_zoo_list_shows_the_default_zoo_as_cached(cli, default_zoo):
    out = cli("zoo", "list").stdout
    assert "digits-mlp" in out and "cached" in out and "not cached" not in out


def test_building_the_zoo_again_gives_identical_files(cli, default_zoo, tmp_path):
    proc = cli("zoo", "build", "digits-mlp", env={"WMPLAT_HOME": str(tmp_path)})
    again = tmp_path / "zoos" / "digits-mlp"
    assert proc.stdout.strip() == str(again)
    assert sha256(again / "weights.safetensors") == sha256(default_zoo / "weights.safetensors")
    assert manifest_of(again)["models"] == manifest_of(default_zoo)["models"]


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
