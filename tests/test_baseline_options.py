"""Baseline options for G.pt's protocol: noise's sigma on normalised weights (`weight_scale`: the
raw noise is sigma / weight_scale) and drawing from each run's last checkpoint only
(`checkpoints="last"`); left unset, neither changes anything."""

import pytest
import torch

from wmplat.baselines.average import Average
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


@pytest.mark.parametrize("baseline, options", [(Noise, {"sigma": 0.0}), (Average, {"k": 1})])
def test_checkpoints_last_draws_only_each_runs_last_checkpoint(baseline, options):
    zoo = method_view(tiny_zoo(DigitsMLP, runs=3, checkpoints=4))
    weights, models = zoo.train_weights(), zoo.train_models()
    last = torch.stack([weights[i] for i, m in enumerate(models) if m.step == 4])
    method = baseline(**options, checkpoints="last")
    method.fit(zoo, seed=0)
    samples = method.sample(12, seed=0)
    equal = (samples[:, None] == last[None]).all(dim=2)
    assert equal.any(dim=1).all() and equal.any(dim=0).all()   # each sample a last one; all 3
    everywhere = baseline(**options)
    everywhere.fit(zoo, seed=0)
    assert not (everywhere.sample(12, seed=0)[:, None] == last[None]).all(dim=2).any(dim=1).all()


def test_checkpoints_takes_all_or_last(cli, default_zoo):
    proc = cli("evaluate", "--method", "noise", "--set", "checkpoints=first", ok=False)
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1
    assert "checkpoints: Input should be 'all' or 'last'" in proc.stderr
