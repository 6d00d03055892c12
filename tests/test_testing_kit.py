"""wmplat.testing, what plugin authors run in their own tests: tiny zoos that are real zoos, and
contract checks that pass for good plugins and fail, saying why, for broken ones."""

import hashlib
import re
import sys
from pathlib import Path

import pytest
import torch
from pydantic import BaseModel, ConfigDict

import wmplat
from wmplat.baselines.noise import Noise
from wmplat.metrics.accuracy import Accuracy
from wmplat.metrics.aligned_l2 import AlignedL2
from wmplat.metrics.max_similarity import MaxSimilarity
from wmplat.metrics.min_l2 import MinL2
from wmplat.tasks.digits_mlp import DigitsMLP
from wmplat.testing import (
    SpecTask,
    check_dataset,
    check_method,
    check_metric,
    method_view,
    tiny_zoo,
)
from wmplat.zoo.format import load_zoo

SPEC = [("enc.weight", (3, 4)), ("enc.bias", (3,)), ("gain", ())]


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- tiny zoos ------------------------------------------------------------------------------

def test_a_tiny_zoo_is_a_verified_zoo_folder_of_runs_and_checkpoints(tmp_path):
    zoo = tiny_zoo(SPEC, tmp_path / "zoo", runs=3, heldout=2, checkpoints=4)
    assert sorted(p.name for p in (tmp_path / "zoo").iterdir()) == ["manifest.json",
                                                                    "weights.safetensors"]
    again = load_zoo(tmp_path / "zoo", SpecTask(SPEC))
    assert torch.equal(again.train_weights(), zoo.train_weights())
    assert zoo.param_spec == [("enc.weight", (3, 4)), ("enc.bias", (3,)), ("gain", ())]
    assert zoo.num_params == 16 and zoo.train_weights().dtype == torch.float32
    train, heldout = zoo.train_models(), zoo.heldout_models()
    assert [(m.run, m.step) for m in train] == [(r, s) for r in range(3) for s in (1, 2, 3, 4)]
    assert {m.run for m in heldout} == {3, 4} and len(heldout) == 8
    quality = zoo.task.quality(zoo.task.behaviour(zoo.train_weights()))
    assert [m.quality for m in train] == [round(float(q), 6) for q in quality]


def test_the_same_arguments_give_the_same_files_and_another_seed_others(tmp_path):
    first, same, other = (tmp_path / name for name in ("a", "b", "c"))
    tiny_zoo(SPEC, first, seed=3)
    tiny_zoo(SPEC, same, seed=3)
    tiny_zoo(SPEC, other, seed=4)
    assert _sha(first / "weights.safetensors") == _sha(same / "weights.safetensors")
    assert _sha(first / "manifest.json") == _sha(same / "manifest.json")
    assert _sha(first / "weights.safetensors") != _sha(other / "weights.safetensors")


def test_frozen_parameters_are_one_value_in_every_model_and_the_rest_move():
    zoo = tiny_zoo(SPEC, runs=2, checkpoints=5, frozen=["enc.bias"])
    params = zoo.unflatten(torch.cat([zoo.train_weights(), zoo.heldout_weights()]))
    assert (params["enc.bias"] == params["enc.bias"][0]).all()
    assert not (params["enc.weight"] == params["enc.weight"][0]).all()
    assert len(set(zoo.train_weights()[:5, :12].sum(dim=1).tolist())) == 5


def test_without_drift_or_jitter_a_run_repeats_one_checkpoint():
    weights = tiny_zoo(SPEC, runs=1, checkpoints=3, drift=0.0, jitter=0.0).train_weights()
    assert torch.equal(weights, weights[:1].expand(3, -1))


def test_a_tiny_zoo_of_a_registered_task_uses_that_task():
    zoo = tiny_zoo(DigitsMLP, runs=2, heldout=2, checkpoints=2)
    assert zoo.task.name == "digits-mlp" and zoo.num_params == 2410
    assert zoo.folder is None            # written to a temporary folder, removed after loading


def test_the_method_view_is_the_train_split_and_refuses_the_heldout_one():
    zoo = tiny_zoo(SPEC)
    view = method_view(zoo)
    assert isinstance(view, wmplat.TrainZoo)
    assert torch.equal(view.train_weights(), zoo.train_weights())
    with pytest.raises(wmplat.ZooError, match="heldout split is not available"):
        view.heldout_weights()
    assert not hasattr(view.task, "build_zoo")


@pytest.mark.parametrize("arguments, message", [
    ({"runs": 0}, "runs must be a positive integer, got 0"),
    ({"checkpoints": 1.5}, "checkpoints must be a positive integer"),
    ({"frozen": ["nope"]}, r"frozen names \['nope'\] are not parameters"),
])
def test_bad_arguments_are_named(arguments, message):
    with pytest.raises(wmplat.ConfigError, match=message):
        tiny_zoo(SPEC, **arguments)


def test_a_folder_that_holds_files_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(wmplat.ConfigError, match="is not empty"):
        tiny_zoo(SPEC, tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


# --- the method contract ----------------------------------------------------------------------

class Honest(wmplat.Method):
    """Train checkpoints with seeded noise: keeps the contract."""

    name = "honest"

    def fit(self, zoo, seed):
        self.w = zoo.train_weights()

    def sample(self, n, seed):
        g = wmplat.random_generator(seed)
        pick = torch.randint(len(self.w), (n,), generator=g)
        return self.w[pick] + 0.01 * torch.randn(n, self.w.shape[1], generator=g)


class WrongShape(Honest):
    name = "wrong-shape"

    def sample(self, n, seed):
        return super().sample(n, seed)[:, :-1]


class MakesNaN(Honest):
    name = "makes-nan"

    def sample(self, n, seed):
        out = super().sample(n, seed)
        out[0, 0] = float("nan")
        return out


class Float64(Honest):
    name = "float64"

    def sample(self, n, seed):
        return super().sample(n, seed).double()


class GlobalRandom(Honest):
    name = "global-random"

    def sample(self, n, seed):
        return self.w[torch.randint(len(self.w), (n,))] + 0.01 * torch.randn(n, self.w.shape[1])


class IgnoresSeed(Honest):
    name = "ignores-seed"

    def sample(self, n, seed):
        return super().sample(n, 0)


class AsksForHeldout(Honest):
    name = "asks-for-heldout"

    def fit(self, zoo, seed):
        self.w = zoo.heldout_weights()


class FindsHeldout(Honest):
    """The route no in-process API can close: the runner's full zoo in a caller's frame."""

    name = "finds-heldout"

    def fit(self, zoo, seed):
        frame = sys._getframe()
        while frame is not None:
            for value in list(frame.f_locals.values()):
                if isinstance(value, wmplat.Zoo):
                    self.w = value.heldout_weights()
                    return
            frame = frame.f_back
        raise LookupError("no zoo found")


class LaxConfig(BaseModel):
    sigma: float = 0.1


class LaxOptions(Honest):
    name = "lax-options"
    Config = LaxConfig


class StrictConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sigma: float = 0.1


class StrictOptions(Honest):
    name = "strict-options"
    Config = StrictConfig


PNG = b"\x89PNG\r\n\x1a\n" + bytes(16)     # the signature is what the runner checks


class Diagnosed(Honest):
    name = "diagnosed"

    def diagnostics(self, seed):
        return wmplat.Diagnostics(summary={"self_r2": 0.5},
                                  figures=[wmplat.Figure("fit", "how it fits", PNG)])


class BadDiagnostics(Honest):
    name = "bad-diagnostics"

    def diagnostics(self, seed):
        return wmplat.Diagnostics(summary={"self_r2": float("inf")})


class DiagnosticsOfAnotherType(Honest):
    name = "diagnostics-dict"

    def diagnostics(self, seed):
        return {"self_r2": 0.5}


def test_good_methods_keep_the_contract():
    check_method(Diagnosed)
    samples = check_method(Honest)
    assert samples.shape == (4, tiny_zoo().num_params)
    check_method(StrictOptions, options={"sigma": 0.2})
    check_method(Noise, tiny_zoo(DigitsMLP, runs=3), options={"sigma": 0.05})


@pytest.mark.parametrize("method, message", [
    (WrongShape, r"samples of shape \[4, 82\], expected \[4, 83\]"),
    (MakesNaN, "non-finite values"),
    (Float64, "sample returned torch.float64; return a float32 tensor"),
    (GlobalRandom, "with seed 0 twice gave different samples"),
    (IgnoresSeed, r"sample\(n, seed=1\) gave the same samples as seed=0"),
    (AsksForHeldout, "fit asked its zoo for the heldout split"),
    (FindsHeldout, "samples copy heldout models"),
    (LaxOptions, "accepted the unknown option 'wmplat_contract_no_such_option'"),
    (BadDiagnostics, "diagnostics: .*returned diagnostic 'self_r2' = inf; expected a finite"),
    (DiagnosticsOfAnotherType, r"returned dict from diagnostics\(\), expected wmplat.Diagnostics"),
])
def test_a_method_that_breaks_the_contract_fails_saying_how(method, message):
    with pytest.raises(AssertionError, match=message):
        check_method(method)


def test_a_deterministic_method_passes_when_it_says_so():
    check_method(IgnoresSeed, stochastic=False)


def test_the_checks_want_the_whole_zoo_not_the_method_view():
    with pytest.raises(AssertionError, match="need a whole wmplat.Zoo, both splits"):
        check_method(Honest, method_view(tiny_zoo()))


def test_options_the_method_refuses_fail_the_check_by_name():
    with pytest.raises(AssertionError, match="sigma"):
        check_method(StrictOptions, options={"sigma": "lots"})


# --- the metric contract ----------------------------------------------------------------------

class Spread(wmplat.Metric):
    """Per sample: distance to the nearest train checkpoint; summary: their median."""

    name = "spread"
    per_sample = ("spread",)
    summary = ("spread_median",)

    def nearest(self, ctx):
        return torch.cdist(ctx.weights("samples").double(),
                           ctx.weights("train").double()).min(dim=1).values

    def compute(self, ctx):
        d = self.nearest(ctx)
        return wmplat.MetricValues(per_sample={"spread": d},
                                   summary={"spread_median": float(d.median())})


class ForgetsADeclaredName(Spread):
    name = "forgets"
    summary = ("spread_median", "spread_max")


class RelativeSpread(Spread):
    """NaN exactly when a sample copies a checkpoint: distance 0 over distance 0."""

    name = "relative"
    summary = ()

    def compute(self, ctx):
        d = self.nearest(ctx)
        return wmplat.MetricValues(per_sample={"spread": d / d}, summary={})


class RandomSpread(Spread):
    name = "random-spread"

    def compute(self, ctx):
        d = self.nearest(ctx) + torch.rand(len(ctx.samples), dtype=torch.float64)
        return wmplat.MetricValues(per_sample={"spread": d},
                                   summary={"spread_median": float(d.median())})


class StdSummary(Spread):
    """A summary that is NaN for a single sample."""

    name = "std-summary"

    def compute(self, ctx):
        d = self.nearest(ctx)
        return wmplat.MetricValues(per_sample={"spread": d},
                                   summary={"spread_median": float(d.std())})


class Drawn(Spread):
    name = "drawn"

    def compute(self, ctx):
        values = super().compute(ctx)
        return wmplat.MetricValues(values.per_sample, values.summary,
                                   [wmplat.Figure("spread", "the spread", PNG)])


class DrawsGIF(Spread):
    name = "draws-gif"

    def compute(self, ctx):
        values = super().compute(ctx)
        return wmplat.MetricValues(values.per_sample, values.summary,
                                   [wmplat.Figure("spread", "the spread", b"GIF89a")])


class DrawsAtRandom(Spread):
    name = "draws-at-random"

    def compute(self, ctx):
        values = super().compute(ctx)
        noise = bytes(torch.randint(256, (8,), dtype=torch.uint8).tolist())
        return wmplat.MetricValues(values.per_sample, values.summary,
                                   [wmplat.Figure("spread", "the spread", PNG + noise)])


@pytest.mark.parametrize("metric", [Accuracy, MaxSimilarity, MinL2, AlignedL2, Spread, Drawn])
def test_good_metrics_keep_the_contract(metric):
    check_metric(metric)


def test_metrics_keep_the_contract_on_a_zoo_with_symmetry():
    check_metric(AlignedL2, tiny_zoo(DigitsMLP, runs=2, heldout=2, checkpoints=2))


@pytest.mark.parametrize("metric, message", [
    (ForgetsADeclaredName, r"summary \['spread_max'\] declared but not returned"),
    (RelativeSpread, "on exact copies of train checkpoints: .*NaN in per-sample 'spread'"),
    (RandomSpread, "two computations on the same samples differ"),
    (StdSummary, "on a single sample: .*summary 'spread_median' = nan"),
    (DrawsGIF, "returned figure 'spread' whose png is not a PNG image"),
    (DrawsAtRandom, "two computations on the same samples differ"),
])
@pytest.mark.filterwarnings("ignore:std.*degrees of freedom")
def test_a_metric_that_breaks_the_contract_fails_saying_how(metric, message):
    with pytest.raises(AssertionError, match=message):
        check_metric(metric)


# --- the dataset contract ---------------------------------------------------------------------

class Symmetric(SpecTask):
    """Claims a symmetry its forward (a fixed projection of the weights) does not have."""

    name = "claims-symmetry"

    def __init__(self):
        super().__init__(wmplat.mlp_spec((4, 5, 3)))

    @property
    def permutation_groups(self):
        return wmplat.mlp_permutation_groups((4, 5, 3))


class BatchNormalised(SpecTask):
    """Behaviour that depends on which models are evaluated together."""

    name = "batch-normalised"

    def behaviour(self, weights):
        return super().behaviour(weights - weights.mean(dim=0))


class SelfDissimilar(SpecTask):
    name = "self-dissimilar"

    def similarity(self, a, b):
        return 0.5 * super().similarity(a, b)


class UnknownBaseline(SpecTask):
    name = "unknown-baseline"
    baseline_settings = {"noize": [{"sigma": 0.1}]}


class BadNoiseSetting(SpecTask):
    name = "bad-noise-setting"
    baseline_settings = {"noise": [{"sigma": -1}]}


def test_good_tasks_keep_the_dataset_contract():
    check_dataset(DigitsMLP)
    check_dataset(SpecTask(SPEC))


@pytest.mark.parametrize("task, message", [
    (Symmetric, "permuting the units of its permutation_groups changed the behaviour"),
    (BatchNormalised, "depends on the models evaluated beside it"),
    (SelfDissimilar, "similarity of a behaviour with itself must be 1"),
    (UnknownBaseline, "baseline_settings names 'noize'.*did you mean 'noise'"),
    (BadNoiseSetting, re.escape("baseline_settings['noise'] {'sigma': -1}")),
])
def test_a_task_that_breaks_the_contract_fails_saying_how(task, message):
    with pytest.raises(AssertionError, match=message):
        check_dataset(task)


def test_build_checks_the_tasks_own_zoo_written_and_loaded():
    class Built(SpecTask):
        name = "built"

        def build_zoo(self):         # records an accuracy no classifier has
            return wmplat.BuiltZoo(
                weights=torch.randn(2, 83, generator=wmplat.random_generator(0)),
                models=[{"id": f"m{i}", "run": i, "step": 1, "seed": i, "quality": -1.0,
                         "split": "train" if i == 0 else "heldout"} for i in range(2)])

    with pytest.raises(AssertionError, match="quality its build_zoo records differs"):
        check_dataset(Built, build=True)
    check_dataset(Built)           # without build=True, build_zoo is not called


# --- the public helpers -----------------------------------------------------------------------

def test_the_helpers_plugins_share_are_public_names():
    for name in ("random_generator", "param_mask", "train_stacked", "epoch_steps", "train_mlps",
                 "init_mlp", "mlp_forward", "mlp_spec", "status", "progress_bar"):
        assert name in wmplat.__all__ and callable(getattr(wmplat, name)), name


def test_train_stacked_trains_only_the_named_parameters_and_keeps_the_asked_steps():
    g = wmplat.random_generator(0)
    x, y = torch.randn(40, 4, generator=g), torch.randint(3, (40,), generator=g)
    start = wmplat.init_mlp((4, 5, 3), seeds=[0, 1])
    kept, steps = wmplat.train_stacked(wmplat.mlp_forward, start, x, y, [0, 1], steps=7,
                                       batch_size=16, lr=1e-2, keep=[7, 2],
                                       trainable=["fc2.weight", "fc2.bias"])
    assert steps == [2, 7] and kept.shape == (2, 2, 15 + 3)
    assert not torch.equal(kept[:, 0], kept[:, 1])
    assert torch.equal(start["fc1.weight"], wmplat.init_mlp((4, 5, 3), seeds=[0, 1])["fc1.weight"])
    with pytest.raises(ValueError, match=r"trainable names \['fc9.bias'\]"):
        wmplat.train_stacked(wmplat.mlp_forward, start, x, y, [0, 1], steps=1, batch_size=16,
                             lr=1e-2, keep=[1], trainable=["fc9.bias"])


def test_param_mask_marks_the_named_parameters():
    mask = wmplat.param_mask(SPEC, ["enc.bias"])
    assert mask.tolist() == [0.0] * 12 + [1.0] * 3 + [0.0]


# --- the docs ---------------------------------------------------------------------------------

def test_the_example_in_the_docs_runs_and_passes():
    docs = (Path(__file__).parents[1] / "docs" / "plugins.md").read_text()
    after = docs.split("A plugin's tests, complete", 1)[1]
    example = after.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(example, "docs/plugins.md", "exec"), namespace)
    tests = [f for name, f in namespace.items() if name.startswith("test_")]
    assert len(tests) == 4
    for test in tests:
        test()


def _package(tmp_path, source: str, test: str = "import wmplat\n"):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text(source)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_pkg.py").write_text(test)
    return tmp_path / "pkg", tmp_path / "tests"


def test_check_public_api_accepts_a_package_written_against_public_names(tmp_path):
    from wmplat.testing import check_public_api

    source = "import wmplat\nfrom wmplat import Method, hookimpl\nclass M(wmplat.Method): ...\n"
    test = "from wmplat.testing import tiny_zoo\nfrom wmplat.plugins import registered\n"
    package, tests = _package(tmp_path, source, test)
    check_public_api(package, tests=tests)


@pytest.mark.parametrize("source, test, message", [
    ("from wmplat.zoo.params import param_mask\n", "", "reaches into wmplat's internals"),
    ("import wmplat\nwmplat.engine.alignment\n", "", "uses wmplat.engine, not public"),
    ("from wmplat import _moved\n", "", "reaches into wmplat's internals"),
    ("import wmplat\n", "from wmplat.evaluation.runner import evaluate\n", "test_pkg.py"),
])
def test_check_public_api_names_the_file_that_reaches_into_internals(tmp_path, source, test,
                                                                      message):
    from wmplat.testing import check_public_api

    package, tests = _package(tmp_path, source, test)
    with pytest.raises(AssertionError, match=message):
        check_public_api(package, tests=tests)
