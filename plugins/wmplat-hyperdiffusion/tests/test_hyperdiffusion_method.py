"""The method `hyperdiffusion`: tokens, the diffusion schedule, DDIM, the network, and fit /
sample on tiny real zoos of any architecture (wmplat.testing)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # the package, uninstalled

import pydantic  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from wmplat_hyperdiffusion.ddim import Schedule, ddim_sample, ddim_steps  # noqa: E402
from wmplat_hyperdiffusion.denoiser import Denoiser, timestep_features  # noqa: E402
from wmplat_hyperdiffusion.method import HyperDiffusion, Standardizer  # noqa: E402
from wmplat_hyperdiffusion.tokens import TokenLayout  # noqa: E402

from wmplat.testing import check_method, method_view, tiny_zoo  # noqa: E402

torch.set_num_threads(1)

# An occupancy field's shape: positional encoding of 2-D points (18 inputs), 2 hidden layers.
FIELD_SPEC = [("fc1.weight", (16, 18)), ("fc1.bias", (16,)), ("fc2.weight", (16, 16)),
              ("fc2.bias", (16,)), ("fc3.weight", (1, 16)), ("fc3.bias", (1,))]
TINY = {"width": 16, "layers": 1, "heads": 2, "steps": 20, "batch_size": 8, "timesteps": 50,
        "ddim_steps": 10}


@pytest.fixture
def tiny() -> dict:
    """Options that fit and sample in well under a second."""
    return dict(TINY)


@pytest.fixture(scope="module")
def field_zoo():
    """A real zoo of 12 fields of 577 parameters (6 runs of 2 checkpoints) and 2 heldout."""
    return tiny_zoo(FIELD_SPEC, runs=6, heldout=2, checkpoints=2)


# ---- tokens ----

def test_one_token_per_parameter_tensor_holding_that_tensor(field_zoo):
    layout = TokenLayout(field_zoo.param_spec)
    weights = field_zoo.train_weights()
    tokens = layout.split(weights)
    assert layout.names == [name for name, _ in FIELD_SPEC]
    assert layout.sizes == [288, 16, 256, 16, 16, 1]
    for token, tensor in zip(tokens, field_zoo.unflatten(weights).values(), strict=True):
        assert torch.equal(token, tensor.reshape(len(weights), -1))
    assert torch.equal(layout.join(tokens), weights)


def test_chunks_cut_long_tensors_without_mixing_two():
    layout = TokenLayout([("a", (3, 7)), ("b", (7,)), ("empty", (0, 4)), ("s", ())], chunk=8)
    assert layout.sizes == [8, 8, 5, 7, 1]
    assert layout.names == ["a[0:8]", "a[8:16]", "a[16:21]", "b", "s"]
    flat = torch.randn(3, 29, generator=torch.Generator().manual_seed(0))
    assert torch.equal(layout.join(layout.split(flat)), flat)


# ---- the diffusion ----

def test_betas_are_linear_from_1e_4_to_2e_2_and_alpha_bar_their_running_product():
    schedule = Schedule(500, 1e-4, 2e-2)
    assert schedule.betas.shape == (500,)
    assert schedule.betas[0].item() == pytest.approx(1e-4, rel=1e-6)
    assert schedule.betas[-1].item() == pytest.approx(2e-2, rel=1e-6)
    assert schedule.betas[100].item() == pytest.approx(1e-4 + 100 * (2e-2 - 1e-4) / 499, rel=1e-6)
    product = 1.0
    for k in range(500):
        product *= 1 - (1e-4 + k * (2e-2 - 1e-4) / 499)
        if k in (0, 49, 250, 499):
            assert schedule.alpha_bar[k].item() == pytest.approx(product, rel=1e-5)
    assert 0.006 < schedule.alpha_bar[-1].item() < 0.007      # x_T is almost pure noise


def test_the_forward_process_ends_near_standard_noise():
    schedule = Schedule(500, 1e-4, 2e-2)
    g = torch.Generator().manual_seed(0)
    x0 = torch.full((20000, 3), 0.2)
    xt = schedule.noisy(x0, torch.full((20000,), 499), torch.randn(20000, 3, generator=g))
    assert abs(xt.mean().item() - 0.2 * 0.0807) < 0.01 and abs(xt.std().item() - 1) < 0.01


def test_ddim_visits_every_step_or_an_even_spread_from_the_last_to_0():
    assert ddim_steps(500, 500) == list(range(499, -1, -1))
    assert ddim_steps(500, 5) == [499, 374, 250, 125, 0]
    assert ddim_steps(50, 1) == [49]
    with pytest.raises(ValueError, match="1 to 50"):
        ddim_steps(50, 51)


def _random_predictor(dim: int):
    w = torch.randn(dim, dim, generator=torch.Generator().manual_seed(1)) / dim ** 0.5
    return lambda x, t: torch.tanh(x @ w) * (1 + t.unsqueeze(1) / 100)


@pytest.mark.parametrize("steps", [50, 7])
def test_ddim_with_eta_0_is_a_function_of_the_start_noise(steps):
    schedule = Schedule(50, 1e-4, 2e-2)
    noise = torch.randn(6, 10, generator=torch.Generator().manual_seed(0))
    first = ddim_sample(_random_predictor(10), noise, schedule, steps)
    assert torch.equal(first, ddim_sample(_random_predictor(10), noise.clone(), schedule, steps))
    other = torch.randn(6, 10, generator=torch.Generator().manual_seed(1))
    assert not torch.equal(first, ddim_sample(_random_predictor(10), other, schedule, steps))


@pytest.mark.parametrize("steps", [500, 13])
def test_ddim_with_a_perfect_x0_predictor_follows_the_noising_path_and_lands_on_x0(steps):
    schedule = Schedule(500, 1e-4, 2e-2)
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(4, 9, generator=g) * 0.1, torch.randn(4, 9, generator=g)
    seen = []

    def oracle(x, t):
        seen.append((x, int(t[0])))
        return x0

    assert torch.equal(ddim_sample(oracle, noise, schedule, steps), x0)
    assert [t for _, t in seen] == ddim_steps(500, steps)
    # eta = 0 keeps the noise that x0 implies in x_T: each x_t is sqrt(a_t) x0 + sqrt(1 - a_t) eps
    a_first = schedule.alpha_bar[seen[0][1]]
    eps = (noise - a_first.sqrt() * x0) / (1 - a_first).sqrt()
    for x, t in seen:
        assert torch.allclose(x, schedule.noisy(x0, torch.full((4,), t), eps), atol=1e-5)


# ---- the network ----

def test_the_network_maps_each_token_back_to_its_own_size():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = Denoiser([288, 16, 1], width=16, layers=2, heads=4)
    g = torch.Generator().manual_seed(0)
    tokens = [torch.randn(5, size, generator=g) for size in (288, 16, 1)]
    out = net(tokens, torch.tensor([0, 1, 2, 250, 499]))
    assert [tuple(o.shape) for o in out] == [(5, 288), (5, 16), (5, 1)]
    assert all(torch.isfinite(o).all() for o in out)


def test_every_step_has_its_own_timestep_features():
    features = timestep_features(torch.arange(500))
    assert features.shape == (500, 257)
    assert torch.equal(features[:, -1], torch.arange(500).float())
    assert len(torch.unique(features[:, :256], dim=0)) == 500


# ---- normalisation ----

@pytest.mark.parametrize("kind", ["global", "tensor"])
def test_standardised_weights_have_mean_0_and_std_1_and_come_back(field_zoo, kind):
    weights = field_zoo.train_weights()
    standardizer = Standardizer(field_zoo.param_spec, weights, kind)
    x = standardizer.forward(weights)
    parts = [t.reshape(len(x), -1) for t in field_zoo.unflatten(x).values()] \
        if kind == "tensor" else [x]
    for part in parts:
        assert abs(part.mean().item()) < 1e-5 and part.std(correction=0).item() == \
            pytest.approx(1, rel=1e-4)
    assert torch.allclose(standardizer.inverse(x), weights, atol=1e-6)


def test_tensor_normalisation_standardises_each_tensor_and_skips_empty_ones():
    spec = [("a", (4, 5)), ("empty", (0, 3)), ("b", (4,))]
    g = torch.Generator().manual_seed(0)
    weights = torch.cat([3 + 2 * torch.randn(6, 20, generator=g), torch.randn(6, 4, generator=g)],
                        dim=1)
    x = Standardizer(spec, weights, "tensor").forward(weights)
    for part in (x[:, :20], x[:, 20:]):
        assert abs(part.mean().item()) < 1e-5
        assert part.std(correction=0).item() == pytest.approx(1, rel=1e-4)


def test_no_normalisation_diffuses_the_raw_weights(field_zoo):
    weights = field_zoo.train_weights()
    standardizer = Standardizer(field_zoo.param_spec, weights, "none")
    assert torch.equal(standardizer.forward(weights), weights)


# ---- fit and sample ----

def test_samples_are_full_finite_float32_vectors(field_zoo, tiny):
    method = HyperDiffusion(**tiny)
    method.fit(method_view(field_zoo), seed=0)
    samples = method.sample(5, seed=0)
    assert samples.shape == (5, field_zoo.num_params) and samples.dtype == torch.float32
    assert torch.isfinite(samples).all()


def test_same_seed_same_samples_whatever_the_global_random_state(field_zoo, tiny):
    def fit_and_sample(fit_seed, sample_seed):
        method = HyperDiffusion(**tiny)
        torch.manual_seed(fit_seed + 1000)        # global state must not matter
        method.fit(method_view(field_zoo), seed=fit_seed)
        torch.manual_seed(99)
        return method.sample(4, seed=sample_seed)

    first = fit_and_sample(0, 0)
    assert torch.equal(first, fit_and_sample(0, 0))
    assert not torch.equal(first, fit_and_sample(0, 1))
    assert not torch.equal(first, fit_and_sample(1, 0))


def test_samples_do_not_depend_on_how_many_are_drawn_together(field_zoo, tiny, monkeypatch):
    method = HyperDiffusion(**tiny)
    method.fit(method_view(field_zoo), seed=0)
    together = method.sample(5, seed=3)
    monkeypatch.setattr("wmplat_hyperdiffusion.method.SAMPLE_BATCH", 2)
    assert torch.allclose(method.sample(5, seed=3), together, atol=1e-6)


def _x0_loss(method: HyperDiffusion, x: torch.Tensor) -> float:
    g = torch.Generator().manual_seed(123)
    with torch.no_grad():
        return sum(method.schedule.training_loss(method.predict_x0, x, g).item()
                   for _ in range(10)) / 10


def test_training_lowers_the_x0_loss_and_samples_land_near_the_training_weights():
    # one run of 40 checkpoints: the training weights lie near a segment in weight space
    zoo = method_view(tiny_zoo(FIELD_SPEC, runs=1, heldout=1, checkpoints=40))
    train = zoo.train_weights()
    method = HyperDiffusion(width=32, layers=2, heads=4, steps=200, lr=2e-3,
                            normalization="tensor", ddim_steps=20)
    untrained = HyperDiffusion(**{**method.config.model_dump(), "steps": 1})
    untrained.fit(zoo, seed=0)
    method.fit(zoo, seed=0)
    x = method.standardizer.forward(train)
    assert _x0_loss(method, x) < 0.3 * _x0_loss(untrained, x)
    nearest = torch.cdist(method.sample(16, seed=0), train).min(dim=1).values
    # a random vector of the weights' scale is about sqrt(2) norms from every one of them
    assert nearest.max().item() < 0.25 * train.norm(dim=1).mean().item()


def test_any_architecture_gives_tokens_scalars_and_chunks_included(tiny):
    spec = [("conv.weight", (4, 2, 3, 3)), ("conv.bias", (4,)), ("temperature", ()),
            ("head.weight", (3, 4))]
    zoo = tiny_zoo(spec, runs=3, heldout=1, checkpoints=2)
    for chunk in (None, 16):
        method = HyperDiffusion(**tiny, chunk=chunk)
        method.fit(method_view(zoo), seed=0)
        assert method.layout.num_tokens == (4 if chunk is None else 8)   # 72 = 4 x 16 + 8
        samples = method.sample(3, seed=0)
        assert samples.shape == (3, zoo.num_params) and torch.isfinite(samples).all()


@pytest.mark.parametrize("normalization", ["none", "tensor"])
def test_hyperdiffusion_keeps_the_method_contract(field_zoo, tiny, normalization):
    check_method(HyperDiffusion, field_zoo, options={**tiny, "normalization": normalization})


def test_the_defaults_are_hyperdiffusions_diffusion_and_a_cpu_sized_network():
    c = HyperDiffusion().config
    assert (c.timesteps, c.beta_start, c.beta_end, c.ddim_steps) == (500, 1e-4, 2e-2, 500)
    assert (c.batch_size, c.normalization, c.chunk) == (32, "none", None)
    assert c.width % c.heads == 0


@pytest.mark.parametrize("options, named", [
    ({"width": 30, "heads": 4}, r"heads \(4\) must divide width \(30\)"),
    ({"timesteps": 100, "ddim_steps": 200}, r"ddim_steps \(200\) must be at most timesteps"),
    ({"beta_start": 0.1, "beta_end": 0.01}, "beta_end"),
    ({"normalization": "layer"}, "normalization"),
    ({"chunk": 0}, "chunk"), ({"steps": 0}, "steps"), ({"lr": 0}, "lr"),
    ({"widht": 64}, "widht"),
])
def test_bad_options_are_refused_by_name(options, named):
    with pytest.raises(pydantic.ValidationError, match=named):
        HyperDiffusion(**options)
