"""Zoos in the style of p-diff: only a subset of parameters trained, and a train split of a
single run. Built from the default zoo's own checkpoints, so the numbers are real."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from wmplat.baselines.noise import Noise
from wmplat.tasks.digits_mlp import DigitsMLP
from wmplat.zoo.format import load_zoo, sha256_file


@pytest.fixture
def zoo(default_zoo):
    return load_zoo(default_zoo, DigitsMLP())


def test_noise_with_params_perturbs_only_those(zoo):
    noise = Noise(sigma=0.5, params=["fc2.bias"])
    noise.fit(zoo.without_heldout(), seed=0)
    samples = zoo.unflatten(noise.sample(6, seed=0))
    train = zoo.unflatten(zoo.train_weights())
    for name, tensor in samples.items():
        # each sample's untouched parameters equal some training checkpoint's exactly
        same = (tensor[:, None] == train[name][None]).flatten(2).all(dim=2).any(dim=1)
        assert same.all() == (name != "fc2.bias"), name


def test_noise_with_an_unknown_param_names_it(cli, default_zoo):
    proc = cli("evaluate", "--method", "noise", "--set", 'params=["fc9.weight"]', ok=False)
    assert proc.returncode == 1
    assert "fc9.weight" in proc.stderr and "fc1.weight" in proc.stderr


@pytest.fixture
def one_run_zoo(default_zoo, tmp_path):
    """Train split: the 5 checkpoints of run 0 only; heldout: unchanged."""
    manifest = json.loads((default_zoo / "manifest.json").read_text())
    keep = [i for i, m in enumerate(manifest["models"])
            if m["split"] == "heldout" or m["run"] == 0]
    tensors = {k: v[keep].contiguous()
               for k, v in load_file(default_zoo / "weights.safetensors").items()}
    folder = tmp_path / "one-run"
    folder.mkdir()
    save_file(tensors, folder / "weights.safetensors")
    manifest["models"] = [manifest["models"][i] for i in keep]
    manifest["files"][0]["sha256"] = sha256_file(folder / "weights.safetensors")
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_a_single_run_train_split_compares_its_checkpoints_with_each_other(cli, one_run_zoo):
    cli("evaluate", "--method", "replica", "--zoo", str(one_run_zoo), "--samples", "8")
    rows = {r["method"]: r for r in cli.json("leaderboard", "--format", "json")}
    train = rows["train"]
    assert train["n_samples"] == 5             # every checkpoint of the one run
    similarity = train["metrics"]["max_similarity_median"]
    assert similarity is not None and 0 < similarity < 1   # never compared with itself
    assert train["metrics"]["min_l2_median"] > 0
    # a replica is an exact copy of one of them
    assert rows["replica"]["metrics"]["min_l2_median"] == 0
    assert rows["replica"]["metrics"]["max_similarity_median"] == 1


def test_split_units_are_runs_unless_the_split_has_one_run(one_run_zoo, zoo):
    from wmplat.zoo.format import independent_units

    small = load_zoo(one_run_zoo, DigitsMLP())
    assert independent_units(small.train_models()) == [-1, -2, -3, -4, -5]
    runs = independent_units(zoo.train_models())
    assert runs == [m.run for m in zoo.train_models()]
    assert torch.tensor(runs).min() >= 0
