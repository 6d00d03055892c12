"""Calibration: what makes a verdict trustworthy. Planted replicas must be flagged, averages must
read as interpolation, fresh runs the statistics have never seen must read as novel. The
thresholds are fixed by the definitions in docs/metrics.md; nothing here is tuned to pass."""

import pytest
import torch

from wmplat.engine.alignment import align
from wmplat.evaluation.runner import REFERENCE, Evaluation, Job, generate, score
from wmplat.evaluation.statistics import ALPHA, CATEGORIES, _flag, judge, novelty_auc
from wmplat.plugins import load_plugins
from wmplat.zoo.catalogue import open_zoo

FRESH_TRIALS, RUNS_PER_TRIAL = 20, 10
pytestmark = pytest.mark.xdist_group("new-seed-runs")   # shares conftest's new_seed_runs


@pytest.fixture(scope="module")
def evaluation(default_zoo, tmp_path_factory):
    zoo = open_zoo(str(default_zoo), load_plugins())
    return Evaluation(zoo, 48, 0, tmp_path_factory.mktemp("calibration"), force=True)


def judged(evaluation, samples):
    values = score(samples, evaluation.zoo, evaluation.cache, None).per_sample
    return judge(values, evaluation.null())


def baseline(evaluation, name, **config):
    entry = load_plugins().generators.get(name)
    cls = entry.cls
    config = cls.Config(**config).model_dump() if cls.Config else config
    return generate(Job(name, "baseline", config, entry), evaluation.zoo, 48, seed=1).samples


def test_replicas_memorize(evaluation):
    result = judged(evaluation, baseline(evaluation, "replica"))
    assert result.summary["verdict"] == "memorizes"
    assert result.summary["replica_rate"] == 1.0


def test_checkpoints_with_tiny_noise_memorize(evaluation):
    result = judged(evaluation, baseline(evaluation, "noise", sigma=0.001))
    assert result.summary["verdict"] == "memorizes"
    assert result.summary["replica_rate"] >= 0.95


def test_aligned_averages_of_independent_runs_interpolate(evaluation):
    result = judged(evaluation, baseline(evaluation, "average", k=16))
    assert result.summary["verdict"] == "interpolates"


def test_interpolations_of_two_runs_interpolate(evaluation):
    result = judged(evaluation, baseline(evaluation, "interpolate"))
    assert result.summary["verdict"] == "interpolates"


def test_same_run_averages_interpolate_as_documented(evaluation):
    result = judged(evaluation, baseline(evaluation, "average", k=5, same_run=True))
    assert result.summary["verdict"] == "interpolates"


def test_large_noise_degrades(evaluation):
    result = judged(evaluation, baseline(evaluation, "noise", sigma=0.5))
    assert result.summary["verdict"] == "degraded"


def test_unaligned_midpoints_differ_from_aligned_ones(evaluation):
    """Alignment matters: the midpoint of two independent runs is a working network only
    after their hidden units are matched."""
    train = evaluation.zoo.train_weights()
    a, b = train[0], train[-1]
    aligned = align(a, b.unsqueeze(0), evaluation.zoo.param_spec,
                    evaluation.zoo.task.permutation_groups)[0].float()
    task = evaluation.zoo.task
    quality = task.quality(task.behaviour(torch.stack([(a + b) / 2, (a + aligned) / 2])))
    assert quality[1] > quality[0] + 0.05


@pytest.fixture(scope="module")
def fresh_trials(evaluation, new_seed_runs):
    """Runs trained with the zoo's recipe from seeds the zoo never used, judged in trials."""
    finals = new_seed_runs.reshape(FRESH_TRIALS, RUNS_PER_TRIAL, -1)
    return [judged(evaluation, trial) for trial in finals]


def test_fresh_runs_read_as_novel_in_at_least_95_percent_of_trials(fresh_trials):
    verdicts = [t.summary["verdict"] for t in fresh_trials]
    assert verdicts.count("novel") >= 0.95 * len(verdicts), verdicts


def test_novelty_auc_interval_covers_one_half_for_fresh_runs(fresh_trials):
    covered = [lo <= 0.5 <= hi for lo, hi in (t.summary["novelty_auc_ci"] for t in fresh_trials)]
    # a 95% interval: allow the few misses its level implies, not more
    assert sum(covered) >= 0.9 * len(covered)


def test_fresh_runs_are_rarely_flagged_one_by_one(fresh_trials):
    category = torch.cat([t.category for t in fresh_trials])
    flagged = float((category != CATEGORIES.index("novel")).double().mean())
    # four tests at level ALPHA each can flag at most 4 * ALPHA of fresh samples
    assert flagged <= 4 * ALPHA


def test_the_fresh_reference_row_is_novel(evaluation):
    result = evaluation.run(REFERENCE)
    assert result.verdict == "novel"
    low, high = result.metrics.novelty_auc_ci
    assert low <= 0.5 <= high


def test_the_fresh_reference_row_judges_each_run_against_the_others(evaluation):
    """Left out, its own value cannot make a run look typical: among 32 runs the most extreme
    of each test has p = 1/32 <= ALPHA and is flagged, where keeping it gives p >= 2/33."""
    result = evaluation.run(REFERENCE)
    null = evaluation.null()
    others = judge(null, null, leave_one_out=True)
    itself = judge(null, null, leave_one_out=False)
    assert result.n_samples == 32
    assert torch.equal(null["category"], others.category)
    assert result.metrics.novel_good_rate == others.summary["novel_good_rate"] < 1.0
    assert itself.summary["novel_good_rate"] == 1.0


def test_conformal_flags_have_the_stated_false_alarm_rate():
    """Exchangeable draws: each is flagged with probability floor(ALPHA * (m + 1)) / (m + 1)."""
    g = torch.Generator().manual_seed(0)
    m, trials = 39, 4000
    draws = torch.randn(trials, m + 1, generator=g)
    flags = torch.stack([_flag(d[:1], d[1:], False, 1)[0] for d in draws])
    expected = int(ALPHA * (m + 1)) / (m + 1)
    assert abs(float(flags.double().mean()) - expected) < 0.01
    assert float(flags.double().mean()) <= ALPHA + 0.01


def brute_force_auc(similarity, null, leave_one_out):
    """Mann-Whitney P(similarity < null), ties one half, pair by pair."""
    pairs = [(1.0 if s < h else 0.5 if s == h else 0.0)
             for i, s in enumerate(similarity.tolist()) for j, h in enumerate(null.tolist())
             if not (leave_one_out and i == j)]
    return sum(pairs) / len(pairs)


def test_novelty_auc_leaves_each_runs_own_pair_out():
    """Runs paired with themselves and ties everywhere: half the runs tie their own value,
    the other half sit one below it, so counting the own pairs would raise the AUC."""
    g = torch.Generator().manual_seed(0)
    null = torch.randint(0, 6, (16,), generator=g).double()
    paired = null.clone()
    paired[1::2] -= 1
    auc = novelty_auc(paired, null, leave_one_out=True)["novelty_auc"]
    assert auc == pytest.approx(brute_force_auc(paired, null, leave_one_out=True), abs=1e-12)
    assert brute_force_auc(paired, null, leave_one_out=False) > auc + 0.005
    apart = novelty_auc(paired, null, leave_one_out=False)["novelty_auc"]
    assert apart == pytest.approx(brute_force_auc(paired, null, leave_one_out=False), abs=1e-12)


def test_novelty_auc_reads_zero_for_closer_and_one_for_farther():
    g = torch.Generator().manual_seed(0)
    null = torch.rand(64, generator=g) * 0.5 + 0.4
    closer = novelty_auc(torch.ones(16), null, leave_one_out=False)
    assert closer["novelty_auc"] == 0.0 and closer["novelty_auc_ci"] == (0.0, 0.0)
    farther = novelty_auc(torch.zeros(16), null, leave_one_out=False)
    assert farther["novelty_auc"] == 1.0
