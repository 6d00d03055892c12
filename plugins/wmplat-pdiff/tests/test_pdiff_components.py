"""The method's parts: the autoencoder, the latent DDPM, and fit/sample on a small zoo."""

import pydantic
import pytest
import torch
from wmplat_pdiff import DigitsPdiff
from wmplat_pdiff.autoencoder import Autoencoder
from wmplat_pdiff.ddpm import LatentDDPM
from wmplat_pdiff.method import Pdiff, PdiffConfig, fit_module, varying_params

import wmplat
from wmplat.testing import check_dataset, check_method, method_view


def _autoencoder(length=50, seed=0, **kwargs):
    options = {"channels": 4, "latent_channels": 3, "fold": 3, "depth": 2, **kwargs}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Autoencoder(length, **options)


def test_encoder_and_decoder_shapes():
    ae = _autoencoder(length=50)
    x = torch.randn(7, 50)
    z = ae.encode(x)
    # 50 padded to 54 = 6 * 3**2; 3 latent channels of length 6
    assert z.shape == (7, 18) == (7, ae.latent_dim)
    assert z.abs().max() <= 1
    assert ae.decode(z).shape == (7, 50)


def test_autoencoder_round_trip_error_falls_with_training():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 50, generator=g)
    ae = _autoencoder(length=50, channels=16)

    def round_trip_error():
        with torch.no_grad():
            return float(torch.nn.functional.mse_loss(ae.decode(ae.encode(x)), x))

    before = round_trip_error()
    fit_module(ae, lambda b: ae.training_loss(b, 0.001, 0.1, g), x, 400,
               PdiffConfig(batch_size=8, lr=3e-3), g, "test")
    after = round_trip_error()
    assert after < 0.2 * before
    assert after < 0.2      # of data with unit variance


def _fixed_denoising_loss(ddpm: LatentDDPM, z0: torch.Tensor) -> float:
    g = torch.Generator().manual_seed(123)
    with torch.no_grad():
        return sum(float(ddpm.training_loss(z0, g)) for _ in range(20)) / 20


def test_training_steps_reduce_the_denoising_loss():
    g = torch.Generator().manual_seed(0)
    z0 = (0.5 + 0.05 * torch.randn(64, 12, generator=g)).clamp(-1, 1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        ddpm = LatentDDPM(12, 64, 2, 100, 1e-4, 2e-2)
    before = _fixed_denoising_loss(ddpm, z0)
    fit_module(ddpm, lambda b: ddpm.training_loss(b, g), z0, 300,
               PdiffConfig(batch_size=32, lr=1e-3), g, "test")
    after = _fixed_denoising_loss(ddpm, z0)
    assert after < 0.5 * before


def test_the_forward_process_ends_near_standard_noise():
    ddpm = LatentDDPM(4, 8, 1, 1000, 1e-4, 2e-2)
    z0 = torch.ones(20000, 4)
    t = torch.full((20000,), 999)
    zt = ddpm.noisy(z0, t, torch.randn(20000, 4, generator=torch.Generator().manual_seed(0)))
    assert abs(float(zt.mean())) < 0.02 and abs(float(zt.std()) - 1) < 0.02


def test_ddpm_samples_have_the_latent_shape_and_range():
    ddpm = LatentDDPM(12, 16, 1, 10, 1e-4, 2e-2)
    z = ddpm.sample(5, 12, torch.Generator().manual_seed(0))
    assert z.shape == (5, 12) and z.abs().max() <= 1


def test_the_subset_is_what_varies_across_the_train_checkpoints(small_zoo):
    assert varying_params(small_zoo, small_zoo.train_weights()) == ["norm.weight", "norm.bias"]


def test_samples_are_full_vectors_with_the_frozen_part_of_a_train_checkpoint(small_zoo, tiny):
    method = Pdiff(**tiny)
    method.fit(small_zoo, seed=0)
    samples = method.sample(6, seed=0)
    train = small_zoo.train_weights()
    assert samples.shape == (6, small_zoo.num_params) and samples.dtype == torch.float32
    assert torch.isfinite(samples).all()
    assert torch.equal(samples[:, :20], train[-1, :20].expand(6, 20))
    generated = samples[:, 20:]
    assert torch.cdist(generated, train[:, 20:]).min() > 0   # not copies


def test_same_seed_same_samples_whatever_the_global_random_state(small_zoo, tiny):
    def fit_and_sample(fit_seed, sample_seed):
        method = Pdiff(**tiny)
        torch.manual_seed(fit_seed + 1000)     # global state must not matter
        method.fit(small_zoo, seed=fit_seed)
        torch.manual_seed(99)
        return method.sample(4, seed=sample_seed)

    first = fit_and_sample(0, 0)
    assert torch.equal(first, fit_and_sample(0, 0))
    assert not torch.equal(first, fit_and_sample(0, 1))
    assert not torch.equal(first, fit_and_sample(1, 0))


def test_a_fitted_method_samples_near_the_training_subsets(small_zoo):
    method = Pdiff(channels=8, ae_steps=300, ddpm_steps=300, timesteps=100,
                   denoiser_width=64, batch_size=40)
    method.fit(small_zoo, seed=0)
    train = small_zoo.train_weights()[:, 20:]
    generated = method.sample(16, seed=0)[:, 20:]
    nearest = torch.cdist(generated, train).min(dim=1).values
    # a random vector of the training subsets' scale is as far as their own norm
    assert float(nearest.median()) < 0.25 * float(train.norm(dim=1).mean())


def test_named_params_override_the_detected_subset(small_zoo, tiny):
    method = Pdiff(params=["norm.bias"], **tiny)
    method.fit(small_zoo, seed=0)
    samples = method.sample(3, seed=0)
    train = small_zoo.train_weights()
    assert torch.equal(samples[:, :44], train[-1, :44].expand(3, 44))
    assert not torch.equal(samples[:, 44:], train[-1, 44:].expand(3, 24))


def test_an_unknown_parameter_name_is_an_error_naming_it(small_zoo, tiny):
    with pytest.raises(wmplat.ConfigError, match=r"unknown: \['norm3.weight'\].*fc.weight"):
        Pdiff(params=["norm3.weight"], **tiny).fit(small_zoo, seed=0)


def test_identical_checkpoints_leave_nothing_to_learn(small, tiny):
    still = method_view(small(drift=0.0, jitter=0.0))
    with pytest.raises(wmplat.ConfigError, match="all identical"):
        Pdiff(**tiny).fit(still, seed=0)


def test_pdiff_keeps_the_method_contract(small, tiny):
    check_method(Pdiff, small(), options=tiny)


def test_digits_pdiff_keeps_the_dataset_contract():
    check_dataset(DigitsPdiff)


@pytest.mark.parametrize("options, field", [
    ({"fold": 1}, "fold"), ({"latent_noise": 1.5}, "latent_noise"),
    ({"beta_start": 0.1, "beta_end": 0.01}, "beta_end"), ({"nosuch": 1}, "nosuch"),
])
def test_bad_options_are_refused_by_name(options, field):
    with pytest.raises(pydantic.ValidationError, match=field):
        Pdiff(**options)
