"""The method `gpt` on tiny zoos: fit, sample, diagnostics, options and the errors it names."""

from pathlib import Path

import pydantic
import pytest
import torch
from gpt_helpers import TINY, MeasuredSpec, TinyMLP, Unmeasured, mlp_view, mlp_zoo
from wmplat_gpt.method import GPT

import wmplat
from wmplat.testing import check_method, check_public_api, method_view, tiny_zoo

PACKAGE = Path(__file__).resolve().parents[1]


def _fitted(view=None, seed=0, **options) -> GPT:
    method = GPT(**{**TINY, **options})
    method.fit(view if view is not None else mlp_view(), seed=seed)
    return method


def test_samples_are_finite_full_vectors_in_the_zoos_units():
    view = mlp_view()
    method = _fitted(view)
    samples = method.sample(6, seed=0)
    assert samples.shape == (6, view.num_params) and samples.dtype == torch.float32
    assert torch.isfinite(samples).all()
    # the scale is G.pt's: 0.538 over the std of every value of every train checkpoint
    assert method.scale == pytest.approx(0.538 / float(view.train_weights().std()))
    assert samples.std() < 20 * view.train_weights().std()


def test_same_seed_same_samples_whatever_the_global_random_state():
    def fit_and_sample(fit_seed, sample_seed):
        torch.manual_seed(fit_seed + 1000)      # global state must not matter
        method = _fitted(seed=fit_seed)
        torch.manual_seed(99)
        return method.sample(4, seed=sample_seed)

    first = fit_and_sample(0, 0)
    assert torch.equal(first, fit_and_sample(0, 0))
    assert not torch.equal(first, fit_and_sample(0, 1))
    assert not torch.equal(first, fit_and_sample(1, 0))


def test_gpt_keeps_the_method_contract():
    check_method(GPT, mlp_zoo(), options=TINY)


@pytest.mark.parametrize("options", [
    {"prompting": "recursive", "recursions": 2},
    {"init_source": "fresh"},
    {"augment": False, "ema": 0.0, "sampling_steps": 5, "max_spacing": 2},
    {"sampling_steps": None},
    {"step_input": "fraction"},
])
def test_every_prompting_mode_and_start_samples(options):
    method = _fitted(**options)
    samples = method.sample(3, seed=0)
    assert samples.shape == (3, 57) and torch.isfinite(samples).all()


def test_training_makes_the_denoiser_better_than_answering_the_start():
    # untrained, the prediction is the start checkpoint; at a low noise step the noisy target
    # itself says much more, and a trained denoiser must have learnt to read it
    untrained, trained = _fitted(steps=1, warmup_steps=0), _fitted(steps=300, lr=3e-3)
    view = mlp_view()
    weights = view.train_weights() * trained.scale
    start, target = trained.pair_runs.draw_pairs(200, wmplat.random_generator(5))
    t = torch.zeros(200, dtype=torch.long)
    noise = torch.randn(200, view.num_params, generator=wmplat.random_generator(6))
    losses = trained.losses

    def error(method):
        x_t = method.diffusion.noisy(weights[target], t, noise)
        with torch.no_grad():
            x0 = method.ema(x_t, t, weights[start], losses[target], losses[start])
        return float((x0 - weights[target]).pow(2).mean())

    assert error(untrained) == pytest.approx(float((weights[start] - weights[target])
                                                   .pow(2).mean()), rel=1e-3)
    assert error(trained) < 0.85 * error(untrained)


def test_a_zoo_without_the_conditioning_loss_is_refused_in_one_line():
    plain = method_view(tiny_zoo(Unmeasured, runs=2, heldout=1, checkpoints=3, name="plain"))
    with pytest.raises(wmplat.ZooError) as caught:
        GPT(**TINY).fit(plain, seed=0)
    message = str(caught.value)
    assert "\n" not in message
    for part in ("'plain'", "'avg_test_loss'", "mnist-gpt", "gpt-lmdb", "--set condition="):
        assert part in message


def test_another_recorded_value_can_be_the_condition_and_an_unrecorded_one_is_named():
    assert torch.isfinite(_fitted(condition="avg_test_err").sample(2, seed=0)).all()
    with pytest.raises(wmplat.ZooError, match=r"no 'avg_train_loss'.*avg_test_err, "
                                              r"avg_test_loss"):
        _fitted(condition="avg_train_loss")


def test_fresh_starts_need_an_fc_mlp():
    spec_zoo = method_view(tiny_zoo(MeasuredSpec([("enc.weight", (4, 3)), ("enc.bias", (4,))]),
                                    runs=2, checkpoints=3))
    with pytest.raises(wmplat.ConfigError, match=r"init_source=fresh.*enc.weight"):
        _fitted(spec_zoo, init_source="fresh")
    assert torch.isfinite(_fitted(spec_zoo).sample(2, seed=0)).all()


def test_runs_of_one_checkpoint_leave_no_pairs():
    single = method_view(mlp_zoo(checkpoints=1))
    with pytest.raises(wmplat.ZooError, match="two or more checkpoints"):
        GPT(**TINY).fit(single, seed=0)


@pytest.mark.parametrize("options, field", [
    ({"width": 10, "heads": 4}, "heads"), ({"sampling_steps": 30, "timesteps": 20},
                                            "sampling_steps"),
    ({"min_spacing": 3, "max_spacing": 2}, "max_spacing"), ({"prompting": "two_step"},
                                                             "prompting"),
    ({"init_source": "heldout"}, "init_source"), ({"ema": 1.0}, "ema"), ({"steps": 0}, "steps"),
    ({"warmup_steps": 50, "steps": 10}, "warmup_steps"), ({"nosuch": 1}, "nosuch"),
    ({"step_input": "seconds"}, "step_input"), ({"condition": ""}, "condition"),
])
def test_bad_options_are_refused_by_name(options, field):
    with pytest.raises(pydantic.ValidationError, match=field):
        GPT(**options)


def test_diagnostics_report_prompt_alignment_with_a_figure():
    method = _fitted()
    method.sample(2, seed=0)
    diagnostics = method.diagnostics(seed=0)
    assert isinstance(diagnostics, wmplat.Diagnostics)
    r2 = diagnostics.summary["prompt_alignment_r2"]
    assert isinstance(r2, float) and r2 == r2 and r2 <= 1
    assert diagnostics.summary["prompt_alignment_mae"] >= 0
    [figure] = diagnostics.figures
    assert figure.name == "prompt_alignment" and "R²" in figure.caption
    assert figure.png.startswith(b"\x89PNG\r\n\x1a\n")
    assert method.diagnostics(seed=0).summary == diagnostics.summary


def test_diagnostics_measure_what_the_samples_achieve():
    method = _fitted(alignment_starts=3, alignment_prompts=5)
    summary = method.diagnostics(seed=1).summary
    # recompute from the method's own samples: the same generator, the same numbers
    g = wmplat.random_generator(1)
    start, start_loss = method._starts(3, g)
    from wmplat_gpt.prompting import alignment_r2, asked_losses
    asked = asked_losses(start_loss, 5)
    samples = method._generate(start.repeat_interleave(5, dim=0),
                               start_loss.repeat_interleave(5), asked.reshape(-1), g)
    achieved = TinyMLP().model_metadata(samples / method.scale)["avg_test_loss"].reshape(3, 5)
    assert summary["prompt_alignment_r2"] == pytest.approx(alignment_r2(asked, achieved))


def test_diagnostics_can_be_turned_off_or_skip_a_task_that_cannot_measure():
    assert _fitted(prompt_alignment=False).diagnostics(seed=0) is None
    task = TinyMLP()
    view = method_view(tiny_zoo(task, runs=2, checkpoints=3))
    method = _fitted(view)
    task.model_metadata = lambda weights: {}       # recorded once, not measurable now
    assert method.diagnostics(seed=0) is None
    with pytest.raises(wmplat.ConfigError, match="measure 'avg_test_loss'"):
        _fitted(view, prompting="recursive")


def test_the_package_and_its_tests_use_only_wmplats_public_names():
    check_public_api(PACKAGE / "wmplat_gpt", tests=PACKAGE / "tests")


CLI_TINY = ["steps=20", "batch_size=8", "width=16", "layers=1", "heads=2", "timesteps=20",
            "sampling_steps=20", "frequencies=8", "warmup_steps=2", "alignment_starts=2",
            "alignment_prompts=4"]


def test_an_evaluation_on_mnist_gpt_stores_the_prompt_alignment(wmplat_cli, tiny_zoo_folder,
                                                               tmp_path):
    results = tmp_path / "results"
    options = [arg for option in CLI_TINY for arg in ("--set", option)]
    wmplat_cli("evaluate", "--method", "gpt", "--zoo", "mnist-gpt", "--samples", "6",
               "--results-dir", str(results), *options, cwd=tmp_path)
    rows = wmplat_cli.json("leaderboard", "--results-dir", str(results), "--format", "json",
                           cwd=tmp_path)
    [row] = [r for r in rows if r["method"] == "gpt"]
    assert row["n_samples"] == 6 and row["config"]["steps"] == 20
    r2 = row["metrics"]["prompt_alignment_r2"]
    assert isinstance(r2, float) and r2 <= 1
    [figure] = list(results.rglob("figures/prompt_alignment.png"))
    assert figure.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
