"""The method's parts: tokens, the scalar embedding, the denoiser, the diffusion, training pairs,
permutation augmentation, start checkpoints and prompt alignment's arithmetic."""

import math

import pytest
import torch
from gpt_helpers import SIZES, TinyMLP, mlp_view
from wmplat_gpt.diffusion import Diffusion, spaced_steps
from wmplat_gpt.network import Denoiser, FrequencyEmbedding
from wmplat_gpt.pairs import Runs, permutation_index, permute
from wmplat_gpt.prompting import alignment_r2, asked_losses, recursive
from wmplat_gpt.starts import cycled, fresh_inits, mlp_sizes
from wmplat_gpt.tokens import join_tokens, split_tokens, token_sizes

import wmplat

GPT_MNIST = wmplat.mlp_spec([784, 10, 10])


def test_the_mnist_mlp_is_eleven_tokens_cut_within_each_tensor():
    assert token_sizes(GPT_MNIST, 1000) == [1000] * 7 + [840, 10, 100, 10]
    assert token_sizes([("a", (3, 4)), ("b", ())], 5) == [5, 5, 2, 1]


def test_tokens_join_back_into_the_exact_flat_vector():
    flat = torch.randn(3, 7960, generator=torch.Generator().manual_seed(0))
    tokens = split_tokens(flat, token_sizes(GPT_MNIST, 1000))
    assert [t.shape[1] for t in tokens] == token_sizes(GPT_MNIST, 1000)
    assert torch.equal(join_tokens(tokens), flat)


def test_the_frequency_embedding_is_sines_cosines_and_the_value():
    embed = FrequencyEmbedding(128, 14)
    x = torch.tensor([0.0, 0.5, 2.3])
    out = embed(x)
    assert out.shape == (3, 257) == (3, embed.size)
    assert float(embed.frequencies[0]) == 1 and float(embed.frequencies[-1]) == 2 ** 14
    assert torch.allclose(out[:, 0], x.sin()) and torch.allclose(out[:, 128], x.cos())
    assert torch.allclose(out[:, 127], (2 ** 14 * x).sin())
    assert torch.equal(out[:, 256], x)


def _denoiser(**kwargs):
    options = {"sizes": [4, 3], "width": 8, "layers": 1, "heads": 2, "frequencies": 4,
               **kwargs}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return Denoiser(**options)


def test_an_untrained_denoiser_predicts_the_start_checkpoint_exactly():
    net = _denoiser()
    g = torch.Generator().manual_seed(1)
    x_t, start = torch.randn(5, 7, generator=g), torch.randn(5, 7, generator=g)
    t, losses = torch.randint(1000, (5,), generator=g), torch.rand(5, generator=g)
    assert torch.equal(net(x_t, t, start, losses, losses + 1), start)


def test_the_denoiser_reads_its_inputs_once_trained_a_little():
    net = _denoiser()
    g = torch.Generator().manual_seed(1)
    x_t, start = torch.randn(5, 7, generator=g), torch.randn(5, 7, generator=g)
    t, losses = torch.randint(1000, (5,), generator=g), torch.rand(5, generator=g)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    for _ in range(3):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(net(x_t, t, start, losses, losses), -start).backward()
        optimizer.step()
    with torch.no_grad():
        out = net(x_t, t, start, losses, losses)
        assert not torch.equal(out, start)
        assert not torch.equal(out, net(x_t, t, start, losses + 1, losses))   # the target loss
        assert not torch.equal(out, net(x_t + 1, t, start, losses, losses))   # the noisy input


def test_the_step_reaches_the_embedding_scaled_as_asked():
    index, fraction = _denoiser(), _denoiser(step_scale=1 / 1000)
    seen = {}

    def keep_first_input(name):
        def hook(module, args, out):
            seen.setdefault(name, args[0].clone())       # the first scalar embedded is t
        return hook

    for name, net in (("index", index), ("fraction", fraction)):
        net.embed_scalar.register_forward_hook(keep_first_input(name))
        x = torch.zeros(2, 7)
        net(x, torch.tensor([500, 999]), x, torch.zeros(2), torch.zeros(2))
    assert seen["index"].tolist() == [500, 999]
    assert torch.allclose(seen["fraction"], torch.tensor([0.5, 0.999]))


def test_weight_decay_falls_on_linear_weights_only():
    net = _denoiser()
    decay, rest = net.parameter_groups(0.1)
    assert decay["weight_decay"] == 0.1 and rest["weight_decay"] == 0.0
    linear_weights = {id(m.weight) for m in net.modules() if isinstance(m, torch.nn.Linear)}
    assert {id(p) for p in decay["params"]} == linear_weights
    assert any(p is net.positions for p in rest["params"])
    assert len(decay["params"]) + len(rest["params"]) == len(list(net.parameters()))


def test_the_forward_process_ends_near_standard_noise():
    diffusion = Diffusion(1000)
    x0 = torch.full((20000, 2), 3.0)
    t = torch.full((20000,), 999)
    xt = diffusion.noisy(x0, t, torch.randn(20000, 2, generator=torch.Generator().manual_seed(0)))
    assert abs(float(xt.mean())) < 0.03 and abs(float(xt.std()) - 1) < 0.02


def test_short_processes_keep_every_beta_below_one():
    for timesteps in (2, 10, 50, 1000):
        alpha_bar = Diffusion(timesteps).alpha_bar
        assert (alpha_bar > 0).all() and (alpha_bar[1:] < alpha_bar[:-1]).all()
    assert float(Diffusion(1000).alpha_bar[0]) == pytest.approx(1 - 1e-4)


def test_sampling_steps_are_spread_over_the_whole_process():
    assert spaced_steps(1000, 1000) == list(range(1000))
    steps = spaced_steps(1000, 10)
    assert len(steps) == 10 and steps[0] == 0 and steps[-1] == 999
    assert spaced_steps(20, 50) == list(range(20))


@pytest.mark.parametrize("steps", [1000, 50])
def test_sampling_with_a_perfect_predictor_ends_on_its_prediction(steps):
    # the last reverse step of DDPM returns the predicted x0 itself
    target = torch.linspace(-2, 2, 6).expand(3, 6)
    seen = []

    def predict(x_t, t):
        seen.append(int(t[0]))
        return target

    out = Diffusion(1000).sample(predict, (3, 6), steps, torch.Generator().manual_seed(0))
    assert torch.allclose(out, target, atol=1e-5)
    assert seen[0] == 999 and seen[-1] == 0 and len(seen) == steps


def _records(runs_and_steps):
    class Record:
        def __init__(self, run, step):
            self.run, self.step = run, step
    return [Record(r, s) for r, s in runs_and_steps]


def test_pairs_are_two_checkpoints_of_one_run_the_target_later():
    # rows out of order on purpose: run 1 has steps 0..4, run 0 steps 0..2, run 2 one checkpoint
    records = _records([(1, 3), (0, 0), (1, 0), (2, 0), (0, 2), (1, 1), (1, 4), (0, 1), (1, 2)])
    runs = Runs.of(records, min_length=2)
    assert len(runs) == 2 and runs.lengths.tolist() == [3, 5]
    assert [records[i].step for i in runs.first()] == [0, 0]
    start, target = runs.draw_pairs(4000, torch.Generator().manual_seed(0))
    for j, k in zip(start.tolist(), target.tolist(), strict=True):
        assert records[j].run == records[k].run and records[k].step > records[j].step
    spacing = [records[k].step - records[j].step for j, k in zip(start, target, strict=True)]
    assert set(spacing) == {1, 2, 3, 4}
    start, target = runs.draw_pairs(500, torch.Generator().manual_seed(0), 2, 3)
    assert {records[k].step - records[j].step for j, k in zip(start, target, strict=True)} \
        == {2, 3}


def test_permuting_hidden_units_keeps_what_every_network_does():
    view = mlp_view()
    task, weights = TinyMLP(), view.train_weights()
    index = permutation_index(view.param_spec, task.permutation_groups, len(weights),
                              torch.Generator().manual_seed(0))
    permuted = permute(weights, index)
    assert not torch.equal(permuted, weights)
    assert torch.equal(permuted.sort(dim=1).values, weights.sort(dim=1).values)
    x, _ = task.test_data()
    before = wmplat.mlp_forward(view.unflatten(weights), x)
    after = wmplat.mlp_forward(view.unflatten(permuted), x)
    assert torch.allclose(before, after, atol=1e-5)
    # the two checkpoints of a pair move by the same permutation: their difference does too
    assert torch.equal(permute(weights[1:] - weights[:-1], index[1:]),
                       permute(weights[1:], index[1:]) - permute(weights[:-1], index[1:]))


def test_a_blocked_axis_moves_its_blocks_whole():
    spec = [("conv", (2,)), ("dense.weight", (1, 6))]
    group = wmplat.PermutationGroup("channels", 2, (("conv", 0), ("dense.weight", 1, 3)))
    index = permutation_index(spec, [group], 200, torch.Generator().manual_seed(0))
    flat = torch.arange(8.0).expand(200, 8)
    rows = {tuple(r) for r in permute(flat, index).tolist()}
    assert rows == {(0, 1, 2, 3, 4, 5, 6, 7), (1, 0, 5, 6, 7, 2, 3, 4)}


def test_the_mlp_shape_is_read_from_fc_names_and_nothing_else():
    assert mlp_sizes(wmplat.mlp_spec([784, 10, 10])) == [784, 10, 10]
    assert mlp_sizes(wmplat.mlp_spec(SIZES)) == SIZES
    assert mlp_sizes([("fc1.weight", (4, 3)), ("fc1.bias", (4,)), ("fc2.weight", (2, 5)),
                      ("fc2.bias", (2,))]) is None            # 4 outputs feed 5 inputs
    assert mlp_sizes([("enc.weight", (4, 3)), ("enc.bias", (4,))]) is None
    assert mlp_sizes([("fc1.weight", (4, 3))]) is None


def test_fresh_starts_are_torch_linear_initialisations():
    view = mlp_view()
    inits = view.unflatten(fresh_inits(view, SIZES, 300, torch.Generator().manual_seed(0)))
    for i, fan_in in enumerate(SIZES[:-1], start=1):
        for part in ("weight", "bias"):
            values = inits[f"fc{i}.{part}"]
            bound = fan_in ** -0.5
            assert values.abs().max() <= bound and values.abs().max() > 0.95 * bound
            assert abs(float(values.std()) - bound / math.sqrt(3)) < 0.05 * bound
    assert len({tuple(v.flatten().tolist()) for v in inits["fc1.weight"]}) == 300


def test_starts_cycle_through_every_run_before_repeating_one():
    rows = torch.tensor([10, 20, 30])
    drawn = cycled(rows, 7, torch.Generator().manual_seed(0)).tolist()
    assert sorted(drawn[:3]) == sorted(drawn[3:6]) == [10, 20, 30] and len(drawn) == 7


def test_prompts_run_from_zero_to_nine_tenths_of_the_start_loss():
    asked = asked_losses(torch.tensor([2.0, 1.0]), 20)
    assert asked.shape == (2, 20)
    assert asked[:, 0].tolist() == [0, 0]
    assert torch.allclose(asked[:, -1], torch.tensor([1.8, 0.9]))
    assert torch.allclose(asked[0, 1] - asked[0, 0], torch.tensor(1.8 / 19))


def test_alignment_r2_is_against_the_identity_line_averaged_over_starts():
    asked = torch.tensor([[0.0, 1.0, 2.0], [0.0, 2.0, 4.0]])
    assert alignment_r2(asked, asked) == 1.0
    assert alignment_r2(asked, asked.mean(dim=1, keepdim=True).expand(2, 3)) == 0.0
    # row 0: error 3 over spread 2 -> -0.5; row 1: error 0 -> 1; mean 0.25
    achieved = torch.tensor([[1.0, 2.0, 3.0], [0.0, 2.0, 4.0]])
    assert alignment_r2(asked, achieved) == pytest.approx(0.25)
    # a perfect straight line that is not the identity is not aligned
    assert alignment_r2(asked, 2 * asked) < 0


def test_recursive_prompting_starts_each_prompt_from_the_last_answer_and_its_loss():
    calls = []

    def generate(start, start_loss, target):
        calls.append((start.clone(), start_loss.clone(), target.clone()))
        return start + 1

    out = recursive(generate, lambda x: x.sum(dim=1), torch.zeros(2, 3), torch.tensor([5., 6.]),
                    torch.zeros(2), recursions=3)
    assert torch.equal(out, torch.full((2, 3), 3.0))
    assert [c[1].tolist() for c in calls] == [[5, 6], [3, 3], [6, 6]]
    assert all(torch.equal(c[2], torch.zeros(2)) for c in calls)
