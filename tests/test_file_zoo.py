"""A zoo that carries its task file: the default zoo's own checkpoints, written as a zoo of a
task file (`sequential: [Linear, ReLU, Linear]`) whose test data is a safetensors file beside
it, or a `datasets` data set pushed to the test hub and loaded at its commit."""

import io
import json
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

from wmplat.errors import ConfigError, ZooError
from wmplat.task import BuiltZoo
from wmplat.tasks.digits_mlp import DigitsMLP
from wmplat.tasks.file import FileTask, load_task_file
from wmplat.zoo.format import load_zoo, read_manifest, sha256_file, write_zoo
from wmplat.zoo.params import flatten

RENAME = {"fc1.weight": "0.weight", "fc1.bias": "0.bias", "fc2.weight": "2.weight",
          "fc2.bias": "2.bias"}
MLP = [{"Linear": [64, 32]}, {"ReLU": []}, {"Linear": [32, 10]}]
DATA_REPO = "wmplat-tester/digits-test"


def task_file(folder, data) -> FileTask:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "digits.yaml"
    path.write_text(yaml.safe_dump({
        "schema_version": 1, "name": "digits-file", "kind": "classifier",
        "description": "digits-mlp's MLP, as a task file", "license": "CC-BY-4.0",
        "architecture": {"sequential": MLP}, "input_shape": [64], "data": data,
        "symmetry": "auto"}, sort_keys=False))
    return load_task_file(path)


def digits_file_task(folder) -> FileTask:
    x, y = DigitsMLP().test_data()
    folder.mkdir(parents=True, exist_ok=True)
    save_file({"inputs": x, "labels": y}, folder / "digits-test.safetensors")
    return task_file(folder, {"file": "digits-test.safetensors"})


def write_as_file_zoo(default_zoo, task, folder):
    """The default zoo's checkpoints and records, under the task file's parameter names."""
    manifest = read_manifest(default_zoo)
    tensors = load_file(default_zoo / "weights.safetensors")
    weights = flatten({RENAME[k]: v for k, v in tensors.items()}, task.param_spec)
    folder.mkdir()
    write_zoo(folder, "digits-file", task, BuiltZoo(
        weights, [m.model_dump() for m in manifest.models], {"from": "digits-mlp"}))
    return folder


@pytest.fixture(scope="module")
def file_zoo(tmp_path_factory, default_zoo):
    task = digits_file_task(tmp_path_factory.mktemp("task"))
    return write_as_file_zoo(default_zoo, task, tmp_path_factory.mktemp("zoos") / "digits-file")


def test_the_zoo_holds_its_task_file_and_data_hashed_like_the_weights(file_zoo):
    manifest = json.loads((file_zoo / "manifest.json").read_text())
    assert manifest["task"] == "digits-file" and manifest["task_file"] == "task.yaml"
    hashed = {f["path"]: f["sha256"] for f in manifest["files"]}
    assert set(hashed) == {"weights.safetensors", "task.yaml", "digits-test.safetensors"}
    for path, digest in hashed.items():
        assert sha256_file(file_zoo / path) == digest
    assert manifest["architecture"] == "Linear(64, 32) ReLU Linear(32, 10) (2,410 parameters)"


def test_it_loads_with_the_task_its_file_describes_and_the_same_qualities(file_zoo,
                                                                          default_zoo):
    zoo = load_zoo(file_zoo)
    original = load_zoo(default_zoo, DigitsMLP())
    assert isinstance(zoo.task, FileTask) and zoo.task.name == "digits-file"
    for split in ("train", "heldout"):
        weights = getattr(zoo, f"{split}_weights")()
        behaviour = zoo.task.behaviour(weights)
        assert torch.equal(behaviour, original.task.behaviour(getattr(original,
                                                                      f"{split}_weights")()))
        recorded = torch.tensor([m.quality for m in getattr(original, f"{split}_models")()])
        assert torch.allclose(zoo.task.quality(behaviour).double(), recorded.double(), atol=1e-6)
    (group,) = zoo.task.permutation_groups
    assert (group.size, group.axes) == (32, (("0.weight", 0), ("0.bias", 0), ("2.weight", 1)))


def test_a_zoo_of_a_registered_task_is_written_as_before(default_zoo, tmp_path):
    """No task_file key: manifests of registered tasks keep the bytes older versions read."""
    original = load_zoo(default_zoo, DigitsMLP())
    built = BuiltZoo(torch.cat([original.train_weights(), original.heldout_weights()]),
                     [m.model_dump() for m in original.train_models() + original.heldout_models()])
    write_zoo(tmp_path, "again", DigitsMLP(), built)
    assert "task_file" not in json.loads((tmp_path / "manifest.json").read_text())
    assert load_zoo(tmp_path, DigitsMLP()).manifest.task_file is None


def test_modified_test_data_in_the_zoo_is_refused(file_zoo, tmp_path):
    copy = shutil.copytree(file_zoo, tmp_path / "copy")
    save_file({"inputs": torch.zeros(500, 64), "labels": torch.zeros(500, dtype=torch.long)},
              copy / "digits-test.safetensors")
    with pytest.raises(ZooError, match="digits-test.safetensors: sha256 does not match"):
        load_zoo(copy)


def test_copycat_memorizes_on_it_through_the_cli(cli, file_zoo, tmp_path):
    info = cli("zoo", "info", str(file_zoo)).stdout
    assert "task     digits-file" in info and "Linear(64, 32) ReLU Linear(32, 10)" in info
    cli("evaluate", "--method", "copycat", "--zoo", str(file_zoo), "--samples", "20")
    rows = {r["method"]: r for r in cli.json("leaderboard", "--format", "json")}
    assert rows["copycat"]["verdict"] == "memorizes" and rows["copycat"]["task"] == "digits-file"
    assert rows["fresh"]["verdict"] != "memorizes"


# --- the datasets source, against the test hub ------------------------------------------------

def push_digits_test_set(hub) -> str:
    """The default task's test images as integers 0..16 and their labels, as one parquet file
    of a dataset repo on the test hub; returns the commit."""
    from huggingface_hub import HfApi

    x, y = DigitsMLP().test_data()
    table = pa.table({"image": (x * 16).round().to(torch.uint8).reshape(-1, 8, 8).tolist(),
                      "label": y.tolist()})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    api = HfApi(token=hub.token)
    api.create_repo(DATA_REPO, repo_type="dataset")
    api.upload_file(path_or_fileobj=buffer.getvalue(), path_in_repo="data/test.parquet",
                    repo_id=DATA_REPO, repo_type="dataset")
    return hub.head(DATA_REPO)


def test_a_datasets_source_loads_at_its_commit_and_gives_the_same_qualities(
        hub, file_zoo, tmp_path):
    commit = push_digits_test_set(hub)
    task = task_file(tmp_path, {"datasets": {
        "path": DATA_REPO, "revision": commit, "split": "test", "input": "image",
        "label": "label", "transform": ["to_float", "scale:16", "flatten"]}})
    x, y = task.test_data()
    assert torch.equal(x, DigitsMLP().test_data()[0]) and torch.equal(y, DigitsMLP().test_data()[1])
    zoo = load_zoo(file_zoo)
    weights = zoo.train_weights()
    assert torch.equal(task.behaviour(weights), zoo.task.behaviour(weights))


def test_the_pin_holds_when_the_data_set_moves_on(hub, tmp_path):
    from huggingface_hub import HfApi

    commit = push_digits_test_set(hub)
    HfApi(token=hub.token).delete_file("data/test.parquet", DATA_REPO, repo_type="dataset")
    assert hub.head(DATA_REPO) != commit
    source = {"path": DATA_REPO, "split": "test", "input": "image", "label": "label",
              "transform": ["to_float", "scale:16", "flatten"]}
    task = task_file(tmp_path, {"datasets": {**source, "revision": commit}})
    assert torch.equal(task.test_data()[1], DigitsMLP().test_data()[1])
    with pytest.raises(ConfigError, match=r"data.datasets wmplat-tester/digits-test@"):
        task_file(tmp_path, {"datasets": {**source, "revision": hub.head(DATA_REPO)}})


def test_a_pushed_file_zoo_is_pulled_and_evaluated_with_no_other_file(cli_process, hub,
                                                                      file_zoo, tmp_path):
    """Through real processes: the Hugging Face clients read their cache settings once."""
    cli_process("zoo", "push", str(file_zoo), "--repo", "wmplat-tester/digits-file")
    commit = hub.head("wmplat-tester/digits-file")
    assert "task: module" in hub.files("wmplat-tester/digits-file")["README.md"].decode()
    registry = tmp_path / "zoos.yaml"
    registry.write_text(yaml.safe_dump({"schema_version": 1, "zoos": {"hub-file": {
        "source": "hub", "repo_id": "wmplat-tester/digits-file", "revision": commit,
        "task": "module"}}}))
    empty = {"WMPLAT_HOME": str(tmp_path / "empty-home")}
    cli_process("--registry", str(registry), "evaluate", "--method", "copycat",
                "--zoo", "hub-file", "--samples", "8", env=empty)
    board = cli_process.json("leaderboard", "--format", "json", env=empty)
    rows = {r["method"]: r for r in board}
    assert rows["copycat"]["zoo_revision"] == commit
    assert rows["copycat"]["verdict"] == "memorizes"


def rewrite_manifest(folder, change):
    manifest = json.loads((folder / "manifest.json").read_text())
    change(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_a_task_file_or_data_file_the_manifest_does_not_hash_is_refused(cli, file_zoo,
                                                                         tmp_path):
    unlisted = shutil.copytree(file_zoo, tmp_path / "unlisted")
    rewrite_manifest(unlisted, lambda m: m.update(files=[f for f in m["files"]
                                                         if f["path"] != "task.yaml"]))
    err = cli("zoo", "info", str(unlisted), ok=False).stderr
    assert "task_file 'task.yaml' must be listed in files" in err and err.count("\n") == 1
    no_data = shutil.copytree(file_zoo, tmp_path / "no-data")
    rewrite_manifest(no_data, lambda m: m.update(files=[f for f in m["files"] if
                                                        f["path"] != "digits-test.safetensors"]))
    err = cli("zoo", "info", str(no_data), ok=False).stderr
    assert "the task file's data file 'digits-test.safetensors' is not listed in files" in err


def test_a_zoo_without_a_task_file_cannot_stand_for_module(tmp_path, default_zoo):
    with pytest.raises(ZooError, match="the zoo has no task_file, so its task 'digits-mlp' "
                                       "must be installed"):
        load_zoo(default_zoo)
