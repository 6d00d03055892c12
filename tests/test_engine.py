"""The evaluation engine is exact and bounded: distances, IoU and behaviour against plain
per-pair references, whatever the memory budget (docs/engine.md)."""

import pytest
import torch

from wmplat.engine.budget import chunk_size, memory_budget
from wmplat.errors import ConfigError
from wmplat.metric import BehaviourCache, EvalContext
from wmplat.metrics.accuracy import Accuracy
from wmplat.metrics.max_similarity import MaxSimilarity
from wmplat.metrics.min_l2 import MinL2, nearest_l2
from wmplat.task import BuiltZoo, ClassifierTask
from wmplat.tasks.digits_mlp import SIZES, DigitsMLP
from wmplat.tasks.mlp import init_mlp, mlp_spec, train_mlps
from wmplat.zoo.format import load_zoo, write_zoo

TINY_BUDGET_MB = "0.005"    # 5 kB: a few rows per block, one model per forward


class FixedLabels(ClassifierTask):
    """A classifier whose behaviours the tests write by hand: only labels matter to IoU."""

    name = "fixed-labels"

    def __init__(self, labels):
        self.labels = labels

    def test_data(self):
        return torch.zeros(len(self.labels), 1), self.labels


def direct_min_l2(a, b):
    """One sample at a time, direct float64 differences (cdist's default is the expansion)."""
    return torch.stack([(b.double() - row.double()).norm(dim=1).min() for row in a])


def plain_iou(errors_a, errors_b):
    """One pair at a time, with Python sets."""
    out = torch.empty(len(errors_a), len(errors_b))
    for i, ea in enumerate(errors_a):
        for j, eb in enumerate(errors_b):
            sa, sb = set(ea.nonzero().flatten().tolist()), set(eb.nonzero().flatten().tolist())
            out[i, j] = 1.0 if not sa | sb else torch.tensor(len(sa & sb) / len(sa | sb))
    return out


def flat_mlps(seeds, scale=1.0):
    params = init_mlp(SIZES, seeds)
    return torch.cat([params[name].reshape(len(seeds), -1) for name, _ in mlp_spec(SIZES)],
                     dim=1) * scale


@pytest.fixture
def zoo(tmp_path):
    """A real digits-mlp zoo folder: 40 train and 8 heldout models, one run each."""
    weights = flat_mlps(range(48), scale=4.0)
    models = [{"id": f"m{i}", "run": i, "step": 0, "seed": i, "quality": 0.0,
               "split": "train" if i < 40 else "heldout"} for i in range(48)]
    write_zoo(tmp_path, "engine-test", DigitsMLP(), BuiltZoo(weights=weights, models=models))
    return load_zoo(tmp_path, DigitsMLP())


def scores(zoo, samples, sample_runs=None):
    ctx = EvalContext(samples=samples, zoo=zoo, cache=BehaviourCache(zoo),
                      sample_runs=sample_runs)
    out = {}
    for metric in (Accuracy(), MaxSimilarity(), MinL2()):
        out.update(metric.compute(ctx).per_sample)
    return out


def test_a_near_duplicate_gets_its_tiny_distance_where_float32_expansion_fails():
    g = torch.Generator().manual_seed(0)
    train = torch.randn(50, 2410, generator=g)
    sample = train[7:8] + 1e-6 * torch.randn(1, 2410, generator=g)
    truth = (sample.double() - train[7].double()).norm()
    assert nearest_l2(sample, train)[0] == pytest.approx(float(truth), rel=1e-12)
    # The shortcut ‖a‖² + ‖b‖² − 2a·b in float32 misses d² by orders of magnitude of d² itself.
    expansion = sample.pow(2).sum() + train[7].pow(2).sum() - 2 * sample[0] @ train[7]
    assert abs(expansion - truth**2) > 1000 * truth**2


def test_a_replica_is_at_distance_exactly_zero():
    train = torch.randn(30, 500, generator=torch.Generator().manual_seed(1)) * 5
    assert torch.equal(nearest_l2(train[[3, 3, 29]], train), torch.zeros(3, dtype=torch.float64))


def test_min_l2_equals_a_direct_float64_search_on_clustered_points():
    g = torch.Generator().manual_seed(2)
    centres = torch.randn(6, 300, generator=g) * 3
    train = centres.repeat(20, 1) + 1e-4 * torch.randn(120, 300, generator=g)
    samples = centres.repeat(5, 1) + 1e-5 * torch.randn(30, 300, generator=g)
    got = nearest_l2(samples, train)
    torch.testing.assert_close(got, direct_min_l2(samples, train), rtol=1e-12, atol=0)


def test_float64_inputs_and_reduced_matmul_precision_stay_exact():
    g = torch.Generator().manual_seed(3)
    train = torch.randn(40, 200, generator=g)
    samples = train[:10] + 1e-7 * torch.randn(10, 200, generator=g)
    expected = direct_min_l2(samples, train)
    torch.testing.assert_close(nearest_l2(samples.double(), train.double()), expected,
                               rtol=1e-12, atol=0)
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("medium")
    try:
        torch.testing.assert_close(nearest_l2(samples, train), expected, rtol=1e-12, atol=0)
    finally:
        torch.set_float32_matmul_precision(previous)


def test_excluded_pairs_are_never_nearest_and_a_fully_excluded_row_is_infinite():
    g = torch.Generator().manual_seed(4)
    train = torch.randn(20, 50, generator=g)
    samples = train[:3].clone()
    excluded = torch.zeros(3, 20, dtype=torch.bool)
    excluded[0, 0] = True          # its own copy
    excluded[2, :] = True          # everything
    got = nearest_l2(samples, train, lambda start, stop: excluded[start:stop])
    assert got[0] == direct_min_l2(samples[:1], train[1:])[0]
    assert got[1] == 0.0 and got[2] == float("inf")


def test_iou_equals_a_plain_per_pair_reference_including_empty_error_sets():
    g = torch.Generator().manual_seed(5)
    labels = torch.randint(3, (40,), generator=g)
    task = FixedLabels(labels)
    a = torch.where(torch.rand(25, 40, generator=g) < 0.2, (labels + 1) % 3, labels)
    b = torch.where(torch.rand(30, 40, generator=g) < 0.2, (labels + 2) % 3, labels)
    a[:3], b[:2] = labels, labels                    # models with no errors at all
    expected = plain_iou(task.errors(a), task.errors(b))
    assert torch.equal(task.similarity(a, b), expected)
    assert torch.all(task.similarity(a[:3], b[:2]) == 1.0)


def test_a_tiny_memory_budget_gives_results_identical_to_one_block(zoo, monkeypatch):
    g = torch.Generator().manual_seed(6)
    train = zoo.train_weights()
    samples = torch.cat([train[:5], train[5:20] + 0.01 * torch.randn(15, train.shape[1],
                                                                     generator=g)])
    runs = torch.arange(20)                          # as for `fresh`: skip each own run
    whole = scores(zoo, samples), scores(zoo, samples, runs)
    monkeypatch.setenv("WMPLAT_MEMORY_BUDGET_MB", TINY_BUDGET_MB)
    assert chunk_size(len(train), 16) < 10 and DigitsMLP()._models_per_forward(500) == 1
    blocked = scores(zoo, samples), scores(zoo, samples, runs)
    for one, many in zip(whole, blocked, strict=True):
        assert one.keys() == many.keys()
        for name in one:
            assert torch.equal(one[name], many[name]), name


def test_scores_match_plain_references_and_runs_are_excluded(zoo):
    task, train = zoo.task, zoo.train_weights()
    samples = torch.cat([train[:4], train[4:8] + 0.05])
    got = scores(zoo, samples)
    assert torch.all(got["max_similarity"][:4] == 1.0) and torch.all(got["min_l2"][:4] == 0.0)
    expected_iou = plain_iou(task.errors(task.behaviour(samples)),
                             task.errors(task.behaviour(train))).max(dim=1).values
    assert torch.equal(got["max_similarity"], expected_iou)
    torch.testing.assert_close(got["min_l2"], direct_min_l2(samples, train), rtol=1e-12, atol=0)
    own_run_skipped = scores(zoo, samples[:4], torch.arange(4))
    assert torch.all(own_run_skipped["min_l2"] > 0)
    torch.testing.assert_close(own_run_skipped["min_l2"][0],
                               direct_min_l2(samples[:1], train[1:])[0], rtol=1e-12, atol=0)


def test_behaviour_matches_one_model_at_a_time(zoo):
    task, weights = zoo.task, zoo.train_weights()[:12]
    one_by_one = torch.cat([task.behaviour(w[None]) for w in weights])
    assert torch.equal(task.behaviour(weights), one_by_one)
    assert task.behaviour(weights[:0]).shape == (0, 500)


@pytest.mark.parametrize("value", ["0", "-3", "lots", "inf"])
def test_a_bad_memory_budget_is_refused_by_name(monkeypatch, value):
    monkeypatch.setenv("WMPLAT_MEMORY_BUDGET_MB", value)
    with pytest.raises(ConfigError, match="WMPLAT_MEMORY_BUDGET_MB"):
        memory_budget()


def test_models_trained_together_equal_models_trained_alone():
    g = torch.Generator().manual_seed(7)
    x, y = torch.rand(64, 64, generator=g), torch.randint(10, (64,), generator=g)

    def train(seeds):
        return train_mlps(x, y, SIZES, seeds=seeds, epochs=2, batch_size=16, lr=1e-2,
                          keep_last=1)[0]

    together = train([0, 1, 2])
    alone = torch.cat([train([s]) for s in (0, 1, 2)])
    assert torch.equal(together, alone)
