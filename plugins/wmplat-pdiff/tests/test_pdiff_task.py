"""The `digits-pdiff` task: its batched network against torch.nn, and its declared subset."""

import torch
from sklearn.datasets import load_digits
from torch import nn
from wmplat_pdiff.network import SUBSET
from wmplat_pdiff.task import DigitsPdiff


def _random_models(n: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {name: torch.randn(n, *shape, generator=g) for name, shape in DigitsPdiff().param_spec}


def _torch_nn(params: dict[str, torch.Tensor], i: int) -> nn.Module:
    net = nn.Sequential(nn.Linear(64, 128), nn.LayerNorm(128), nn.ReLU(),
                        nn.Linear(128, 128), nn.LayerNorm(128), nn.ReLU(), nn.Linear(128, 10))
    names = ["fc1", "norm1", None, "fc2", "norm2", None, "fc3"]
    with torch.no_grad():
        for layer, name in zip(net, names, strict=True):
            if name:
                layer.weight.copy_(params[f"{name}.weight"][i])
                layer.bias.copy_(params[f"{name}.bias"][i])
    return net


def test_the_batched_forward_is_the_torch_nn_network_for_every_model():
    task = DigitsPdiff()
    params = _random_models(3)
    x = torch.rand(11, 64, generator=torch.Generator().manual_seed(1))
    logits = task.forward(params, x)
    assert logits.shape == (3, 11, 10)
    for i in range(3):
        torch.testing.assert_close(logits[i], _torch_nn(params, i)(x), rtol=1e-4, atol=1e-4)


def test_the_architecture_and_its_subset():
    spec = dict(DigitsPdiff().param_spec)
    assert sum(torch.Size(s).numel() for s in spec.values()) == 26634
    assert sum(torch.Size(spec[n]).numel() for n in SUBSET) == 512
    assert DigitsPdiff().permutation_groups == []


def test_the_test_set_is_a_stratified_500_of_the_digits():
    x, y = DigitsPdiff().test_data()
    assert x.shape == (500, 64) and y.shape == (500,)
    assert 0 <= float(x.min()) and float(x.max()) <= 1
    expected = 500 * torch.bincount(torch.tensor(load_digits().target)) / 1797
    assert (torch.bincount(y) - expected).abs().max() <= 1


def test_the_noise_baselines_perturb_only_the_subset():
    settings = DigitsPdiff.baseline_settings["noise"]
    assert [s["sigma"] for s in settings] == [0.06, 0.12]
    assert all(s["params"] == list(SUBSET) for s in settings)
