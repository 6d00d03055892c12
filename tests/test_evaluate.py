"""`wmplat evaluate` end to end through the CLI: results on disk, calibration, determinism."""

import json

import pytest
import torch
from conftest import Cli
from safetensors.torch import load_file

ROW_FIELDS = {"schema_version", "method", "kind", "method_version", "zoo", "zoo_revision",
              "task", "n_samples", "seed", "config", "config_hash", "metrics", "verdict",
              "environment", "created_at", "wall_seconds"}
METRIC_FIELDS = {"accuracy_mean", "accuracy_max", "max_similarity_median", "min_l2_median",
                 "aligned_l2_median", "novelty_auc", "novelty_auc_ci", "replica_rate",
                 "novel_good_rate"}


def stored(folder):
    """{label: (result dict, per-sample tensors)} for every result under `folder`."""
    out = {}
    for path in sorted(folder.rglob("result.json")):
        row = json.loads(path.read_text())
        key = row["method"] + "".join(f" {k}={v}" for k, v in row["config"].items())
        out[key] = (row, load_file(path.parent / "per_sample.safetensors"))
    return out


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, default_zoo):
    folder = tmp_path_factory.mktemp("evaluate")
    proc = Cli(folder)("evaluate", "--method", "copycat", "--samples", "32", "--seed", "3")
    return folder, proc, stored(folder / "wmplat-results")


def test_a_method_is_stored_beside_every_baseline_and_the_fresh_reference(evaluated):
    _, _, results = evaluated
    assert set(results) == {"copycat", "noise sigma=0.01", "noise sigma=0.1",
                            "average k=16 same_run=False", "average k=5 same_run=True",
                            "interpolate", "gaussian", "replica", "fresh", "train"}
    kinds = {key: row["kind"] for key, (row, _) in results.items()}
    assert kinds["copycat"] == "method"
    assert kinds["fresh"] == kinds["train"] == "reference"
    assert {kinds[k] for k in kinds if k not in ("copycat", "fresh", "train")} == {"baseline"}


def test_each_result_has_every_schema_field(evaluated):
    for row, _ in evaluated[2].values():
        assert set(row) == ROW_FIELDS
        assert set(row["metrics"]) >= METRIC_FIELDS
        assert row["verdict"] in ("novel", "interpolates", "memorizes", "degraded")
        assert row["schema_version"] == 1


def test_a_result_records_seed_sizes_versions_and_config(evaluated):
    row, per_sample = evaluated[2]["copycat"]
    assert (row["seed"], row["n_samples"], row["method_version"]) == (3, 32, "0.1.0")
    assert row["config"] == {} and row["zoo"] == "digits-mlp" and row["task"] == "digits-mlp"
    assert row["zoo_revision"].startswith("local-")
    assert row["environment"]["torch"] == torch.__version__
    assert {k: v.shape for k, v in per_sample.items()} == {
        name: (32,) for name in ("accuracy", "max_similarity", "min_l2", "aligned_l2",
                                 "hull_residual", "error_consistency", "category",
                                 "heldout_l2", "heldout_copy")}
    noise, _ = evaluated[2]["noise sigma=0.1"]
    assert noise["config"] == {"sigma": 0.1} and noise["seed"] == 3


def test_the_printed_leaderboard_shows_every_row(evaluated):
    _, proc, _ = evaluated
    for label in ("copycat", "noise(sigma=0.01)", "average(k=16, same_run=False)", "replica",
                  "fresh"):
        assert label in proc.stdout


def test_progress_is_shown_on_stderr(evaluated):
    _, proc, _ = evaluated
    assert "[1/10] copycat (method) on digits-mlp" in proc.stderr
    assert "[10/10] fresh (reference)" in proc.stderr


def test_replicas_are_exact_copies_of_training_checkpoints(evaluated):
    for key in ("replica", "copycat"):
        row, per_sample = evaluated[2][key]
        assert torch.all(per_sample["max_similarity"] == 1.0)
        assert torch.all(per_sample["min_l2"] == 0.0)
        assert row["metrics"]["max_similarity_median"] == 1.0
        assert row["metrics"]["min_l2_median"] == 0.0


def test_fresh_runs_are_not_replicas(evaluated):
    row, per_sample = evaluated[2]["fresh"]
    assert row["n_samples"] == 32 and row["seed"] is None
    assert per_sample["max_similarity"].median() < 1.0
    # independently trained models are far apart in weight space: far more than noise 0.01
    noise_l2 = evaluated[2]["noise sigma=0.01"][1]["min_l2"]
    assert per_sample["min_l2"].min() > 5 * noise_l2.max()
    assert row["metrics"]["accuracy_mean"] > 0.9


def test_each_default_row_gets_the_verdict_its_construction_implies(evaluated):
    verdicts = {key: row["verdict"] for key, (row, _) in evaluated[2].items()}
    assert verdicts == {
        "copycat": "memorizes", "replica": "memorizes", "noise sigma=0.01": "memorizes",
        "noise sigma=0.1": "memorizes",  # a perturbed copy, still nearest one checkpoint
        "average k=16 same_run=False": "interpolates", "average k=5 same_run=True": "interpolates",
        "interpolate": "interpolates", "gaussian": "degraded", "fresh": "novel",
        "train": "novel"}


def test_larger_noise_lowers_accuracy_and_similarity(evaluated):
    small, large = evaluated[2]["noise sigma=0.01"][0], evaluated[2]["noise sigma=0.1"][0]
    assert large["metrics"]["accuracy_mean"] < small["metrics"]["accuracy_mean"]
    assert large["metrics"]["max_similarity_median"] < small["metrics"]["max_similarity_median"]
    assert large["metrics"]["min_l2_median"] > small["metrics"]["min_l2_median"]


def test_the_same_command_twice_gives_identical_metrics(cli, evaluated, tmp_path):
    first = evaluated[2]
    cli("evaluate", "--method", "copycat", "--samples", "32", "--seed", "3", cwd=tmp_path)
    second = stored(tmp_path / "wmplat-results")
    assert set(second) == set(first)
    for key in first:
        assert second[key][0]["metrics"] == first[key][0]["metrics"], key
        for name, values in first[key][1].items():
            assert torch.equal(second[key][1][name], values), (key, name)


def test_another_seed_gives_other_samples(cli, evaluated, tmp_path):
    cli("evaluate", "--method", "noise", "--samples", "32", "--seed", "4", cwd=tmp_path)
    other = stored(tmp_path / "wmplat-results")["noise sigma=0.01"][1]["min_l2"]
    assert not torch.equal(other, evaluated[2]["noise sigma=0.01"][1]["min_l2"])


def test_a_rerun_reuses_stored_results(evaluated):
    folder, _, results = evaluated
    proc = Cli(folder)("evaluate", "--method", "copycat", "--samples", "32", "--seed", "3")
    assert proc.stderr.count("reusing") == 10
    again = stored(folder / "wmplat-results")
    assert {k: r["created_at"] for k, (r, _) in again.items()} == \
        {k: r["created_at"] for k, (r, _) in results.items()}


def test_force_recomputes(cli, tmp_path):
    cli("evaluate", "--method", "replica", "--samples", "4")
    proc = cli("evaluate", "--method", "replica", "--samples", "4", "--force")
    assert "reusing" not in proc.stderr


def test_set_passes_validated_options_to_the_method(cli, default_zoo):
    cli("evaluate", "--method", "scaled", "--samples", "4", "--set", "scale=0.5")
    [path] = (cli.cwd / "wmplat-results").rglob("scaled/*/result.json")
    assert json.loads(path.read_text())["config"] == {"scale": 0.5}


def test_the_first_evaluation_installs_the_default_zoo(cli, tmp_path):
    proc = cli("evaluate", "--method", "replica", "--samples", "4",
               env={"WMPLAT_HOME": str(tmp_path / "home")})
    assert "installing the shipped zoo 'digits-mlp'" in proc.stderr
    assert (tmp_path / "home" / "zoos" / "digits-mlp" / "manifest.json").is_file()
