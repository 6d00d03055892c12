"""The method's parts, each against what it must guarantee."""

import pytest
import torch
from wmplat_hyperreps.augment import erase, permute, random_permutations
from wmplat_hyperreps.autoencoder import TokenAutoencoder
from wmplat_hyperreps.cnn import cnn_forward, init_cnn
from wmplat_hyperreps.losses import nt_xent
from wmplat_hyperreps.method import HyperReps
from wmplat_hyperreps.sampling import LatentKDE, top_share
from wmplat_hyperreps.task import Mnist1dCNN
from wmplat_hyperreps.tokens import Tokenizer

import wmplat
from wmplat.testing import SpecTask, check_dataset, check_method, method_view, tiny_zoo

TINY = {"epochs": 25, "batch_size": 8, "d_model": 16, "heads": 2, "blocks": 1, "ff": 32,
        "latent": 8, "projection": 8, "lr": 3e-3}


@pytest.fixture(scope="module")
def task():
    return Mnist1dCNN()


@pytest.fixture(scope="module")
def fitted(zoo):
    method = HyperReps(**TINY)
    method.fit(zoo, seed=0)
    return method


def test_tokens_round_trip_exactly_for_the_cnn_and_an_mlp(task):
    mlp = [("fc1.weight", (32, 64)), ("fc1.bias", (32,)), ("fc2.weight", (10, 32)),
           ("fc2.bias", (10,))]
    for spec, tokens, width in ((task.param_spec, 8 + 16 + 20 + 10, 16 * 5 + 1),
                                (mlp, 32 + 10, 65)):
        tok = Tokenizer(spec)
        w = torch.randn(7, tok.num_params)
        out = tok.tokenize(w)
        assert out.shape == (7, tokens, width)
        assert torch.equal(tok.detokenize(out), w)
        assert torch.all(out[:, ~tok.mask] == 0)


def test_a_token_is_one_output_channel_with_its_bias(task):
    tok = Tokenizer(task.param_spec)
    params = init_cnn([3])
    flat = torch.cat([params[n].reshape(1, -1) for n, _ in task.param_spec], dim=1)
    token = tok.tokenize(flat)[0, 8 + 5]                     # conv2, output channel 5
    expected = torch.cat([params["conv2.weight"][0, 5].flatten(), params["conv2.bias"][0, 5:6]])
    assert torch.equal(token[:len(expected)], expected)


def test_a_layer_whose_parameters_disagree_on_units_is_refused():
    with pytest.raises(wmplat.ConfigError, match="layer 'fc1'.*different numbers of units"):
        Tokenizer([("fc1.weight", (4, 3)), ("fc1.bias", (5,))])


def test_permutation_augmentation_keeps_the_networks_function(task):
    params = init_cnn([0, 1, 2, 3])
    perms = random_permutations(task.permutation_groups, 4, torch.Generator().manual_seed(1))
    permuted = permute(params, task.permutation_groups, perms)
    x, _ = task.test_data()
    assert not torch.equal(permuted["conv2.weight"], params["conv2.weight"])
    torch.testing.assert_close(cnn_forward(permuted, x), cnn_forward(params, x),
                               rtol=1e-5, atol=1e-5)


def test_views_reconstruct_toward_a_permuted_model_with_the_same_function(zoo, task):
    method = HyperReps(**{**TINY, "epochs": 1, "permute": True})
    method.fit(zoo, seed=0)
    x = (zoo.train_weights()[:4] - method.mean) / method.std
    view, target = method.views(x, torch.Generator().manual_seed(0))
    assert view.shape == target.shape == method.tokenizer.tokenize(x).shape
    permuted = method.tokenizer.detokenize(target) * method.std + method.mean
    original = zoo.train_weights()[:4]
    assert not torch.allclose(permuted, original)
    inputs, _ = task.test_data()
    torch.testing.assert_close(cnn_forward(zoo.unflatten(permuted), inputs),
                               cnn_forward(zoo.unflatten(original), inputs),
                               rtol=1e-4, atol=1e-4)


def test_erasing_zeroes_one_contiguous_block_or_nothing():
    tokens = torch.ones(200, 50, 3)
    out = erase(tokens, 0.5, (0.02, 0.33), torch.Generator().manual_seed(0))
    erased = (out == 0).all(dim=2)                                       # [200, 50]
    counts = erased.sum(dim=1)
    assert 60 < (counts > 0).sum() < 140                                 # p = 0.5
    for row in erased[counts > 0]:
        where = row.nonzero().squeeze(1)
        assert where[-1] - where[0] + 1 == len(where)                   # one block
        assert 1 <= len(where) <= round(0.33 * 50)
    assert torch.equal(erase(tokens, 0.0, (0.1, 0.2), torch.Generator()), tokens)


def test_contrastive_loss_is_lower_for_matching_views():
    a = torch.randn(16, 8, generator=torch.Generator().manual_seed(0))
    assert nt_xent(a, a + 0.01, 0.1) < nt_xent(a, a.roll(1, dims=0), 0.1)


def test_autoencoder_maps_tokens_to_latents_and_back(task):
    tok = Tokenizer(task.param_spec)
    model = TokenAutoencoder(tok.layer, tok.width, d_model=16, heads=2, blocks=1, ff=32,
                             latent=8, projection=4, dropout=0.0)
    tokens = tok.tokenize(torch.randn(5, tok.num_params))
    z, y = model(tokens)
    assert z.shape == (5, 8) and y.shape == tokens.shape
    assert model.head(z).shape == (5, 4)
    assert tok.detokenize(y).shape == (5, tok.num_params)


def test_reconstruction_loss_decreases_with_training(fitted):
    recon = [h["recon"] for h in fitted.history]
    assert recon[-1] < 0.8 * recon[0]


def test_the_trained_autoencoder_reconstructs_better_than_an_untrained_one(zoo, fitted):
    def error(method):
        x = (zoo.train_weights() - method.mean) / method.std
        with torch.no_grad():
            _, y = method.model(method.tokenizer.tokenize(x))
        return (method.tokenizer.detokenize(y) - x).square().mean()

    untrained = HyperReps(**{**TINY, "epochs": 1, "lr": 1e-12})
    untrained.fit(zoo, seed=0)
    untrained.model.eval()
    assert error(fitted) < 0.8 * error(untrained)


def test_top_share_keeps_the_models_at_or_above_the_quantile():
    quality = torch.tensor([0.5, 0.9, 0.1, 0.7, 0.8, 0.2, 0.3, 0.6, 0.4, 0.0])
    assert sorted(top_share(quality, 0.3).tolist()) == [1, 3, 4]


def test_the_kde_is_fitted_on_the_latents_of_the_best_30_percent(zoo, fitted):
    quality = torch.tensor([m.quality for m in zoo.train_models()])
    left_out = torch.ones(len(quality), dtype=torch.bool)
    left_out[fitted.top] = False
    assert 0.25 * len(quality) <= len(fitted.top) <= 0.5 * len(quality)
    assert quality[fitted.top].min() > quality[left_out].max()
    x = (zoo.train_weights() - fitted.mean) / fitted.std
    with torch.no_grad():
        latents = fitted.model.encode(fitted.tokenizer.tokenize(x))
    torch.testing.assert_close(fitted.kde.latents, latents[fitted.top])


def test_kde_samples_take_each_dimension_from_some_top_model(fitted):
    top = fitted.kde.latents
    z = LatentKDE(top, 0.0).sample(400, torch.Generator().manual_seed(0))
    for d in range(z.shape[1]):
        assert set(z[:, d].tolist()) <= set(top[:, d].tolist())
    # independent dimensions: samples mix coordinates of different models
    assert not (z[:, None, :] == top[None]).all(dim=2).any(dim=1).all()


def test_coupled_kde_draws_whole_latents_of_top_models(fitted):
    kde = LatentKDE(fitted.kde.latents, 0.0, couple_dims=True)
    z = kde.sample(50, torch.Generator().manual_seed(0))
    match = (z[:, None, :] == fitted.kde.latents[None]).all(dim=2)
    assert match.any(dim=1).all()


def test_same_seed_gives_the_same_samples_and_another_seed_others(zoo, fitted):
    again = HyperReps(**TINY)
    again.fit(zoo, seed=0)
    assert torch.equal(again.sample(6, seed=3), fitted.sample(6, seed=3))
    assert not torch.equal(fitted.sample(6, seed=4), fitted.sample(6, seed=3))
    other = HyperReps(**TINY)
    other.fit(zoo, seed=1)
    assert not torch.equal(other.sample(6, seed=3), fitted.sample(6, seed=3))


def test_samples_are_full_weight_vectors_of_the_zoo(zoo, fitted):
    samples = fitted.sample(5, seed=0)
    assert samples.shape == (5, zoo.num_params) and samples.dtype == torch.float32
    assert torch.isfinite(samples).all()


def test_fitting_leaves_the_global_random_state_alone(zoo):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    HyperReps(**{**TINY, "epochs": 1}).fit(zoo, seed=5)
    assert torch.equal(torch.rand(3), expected)


def test_hyperreps_keeps_the_method_contract(task):
    zoo = tiny_zoo(task, runs=8, heldout=2, checkpoints=2)
    check_method(HyperReps, zoo, options={**TINY, "epochs": 2})


def test_mnist1d_cnn_keeps_the_dataset_contract(task):
    check_dataset(task)


class BlockedTask(SpecTask):
    """Hidden units whose next layer takes them in blocks, as a Linear after a Flatten does."""

    name = "blocked"

    def __init__(self):
        super().__init__([("conv.weight", (2, 3)), ("fc.weight", (3, 4))])

    @property
    def permutation_groups(self):
        return [wmplat.PermutationGroup("units", 2, (("conv.weight", 0), ("fc.weight", 1, 2)))]


def test_a_group_that_moves_blocks_is_refused_with_one_line():
    method = HyperReps(**{**TINY, "epochs": 1, "permute": True})
    with pytest.raises(wmplat.ConfigError, match="moves 'fc.weight' in blocks"):
        method.fit(method_view(tiny_zoo(BlockedTask)), seed=0)
