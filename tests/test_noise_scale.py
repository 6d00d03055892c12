"""The noise baseline's sigma on normalised weights (`weight_scale`, as Zeng et al. state G.pt's
noise): the raw noise is sigma / weight_scale, and leaving it unset changes nothing."""

import torch

from wmplat.baselines.noise import Noise
from wmplat.plugins import load_plugins
from wmplat.tasks.digits_mlp import DigitsMLP
from wmplat.testing import method_view, tiny_zoo


def _samples(**options):
    noise = Noise(**options)
    noise.fit(method_view(tiny_zoo(DigitsMLP, runs=3)), seed=0)
    return noise.sample(5, seed=3)


def test_sigma_on_normalised_weights_is_sigma_over_the_scale_on_raw_weights():
    torch.testing.assert_close(_samples(sigma=0.5, weight_scale=10.0), _samples(sigma=0.05),
                               rtol=0, atol=1e-7)
    assert not torch.equal(_samples(sigma=0.5, weight_scale=10.0), _samples(sigma=0.5))


def test_an_unset_weight_scale_leaves_the_config_and_its_label_as_before(cli, default_zoo,
                                                                          tmp_path):
    from wmplat.evaluation.runner import validate_config

    entry = load_plugins().generators.get("noise")
    assert validate_config(entry, {"sigma": 0.1}) == {"sigma": 0.1}
    proc = cli("evaluate", "--method", "noise", "--set", "weight_scale=0", ok=False)
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1
    assert "weight_scale: Input should be greater than 0" in proc.stderr
