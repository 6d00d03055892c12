"""End to end through the real command line, on the tiny test zoo."""

import hashlib
import json

TINY = ["--set", "epochs=2", "--set", "batch_size=8", "--set", "d_model=16", "--set", "heads=2",
        "--set", "blocks=1", "--set", "ff=32", "--set", "latent=8", "--set", "projection=8"]


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_zoo_is_split_by_run_with_distinct_seeds_and_checkpoints(cli_zoo):
    manifest = json.loads((cli_zoo / "manifest.json").read_text())
    models = manifest["models"]
    assert manifest["task"] == "mnist1d-cnn"
    assert sum(p["shape"][0] * (p["shape"][1] * p["shape"][2] if len(p["shape"]) == 3 else
               p["shape"][1] if len(p["shape"]) == 2 else 1)
               for p in manifest["param_spec"]) == 2534
    train = {m["run"] for m in models if m["split"] == "train"}
    heldout = {m["run"] for m in models if m["split"] == "heldout"}
    assert train and heldout and not train & heldout
    assert len({m["seed"] for m in models}) == len(train | heldout)
    assert all(sum(m["run"] == r for m in models) == 2 for r in train | heldout)
    assert manifest["provenance"]["task_version"] == "1-tiny"


def test_building_the_zoo_again_gives_identical_files(cli, cli_zoo):
    before = {p.name: sha256(p) for p in cli_zoo.iterdir()}
    cli("zoo", "build", "mnist1d-cnn")
    assert {p.name: sha256(p) for p in cli_zoo.iterdir()} == before


def test_evaluate_through_the_cli_stores_a_leaderboard_row(cli, cli_zoo, tmp_path):
    results = tmp_path / "results"
    proc = cli("evaluate", "--method", "hyperreps", "--zoo", "mnist1d-cnn", "--samples", "8",
               "--results-dir", str(results), *TINY)
    assert "hyperreps: epoch 2/2" in proc.stderr
    rows = cli.json("leaderboard", "--results-dir", str(results), "--format", "json")
    row = next(r for r in rows if r["method"] == "hyperreps")
    assert row["kind"] == "method" and row["zoo"] == "mnist1d-cnn" and row["n_samples"] == 8
    assert row["config"]["epochs"] == 2 and row["config"]["top"] == 0.3
    assert 0.0 <= row["metrics"]["accuracy_mean"] <= 1.0
    assert row["metrics"]["max_similarity_median"] is not None
    # 6 heldout runs in the tiny zoo: fewer than the 19 a conformal test at 0.05 needs to flag
    # anything, so the row says the test had no power rather than reading novel
    assert row["verdict"] == "no-power"
    assert {r["config"]["sigma"] for r in rows if r["method"] == "noise"} == {0.02, 0.04}
    assert [r["config"]["k"] for r in rows if r["method"] == "average"] == [16]
    assert any(r["method"] == "fresh" for r in rows)


def test_a_bad_option_is_a_one_line_error_naming_it(cli, cli_zoo):
    proc = cli("evaluate", "--method", "hyperreps", "--zoo", "mnist1d-cnn", "--set",
               "heads=3", ok=False)
    assert proc.returncode == 1
    assert "d_model (64) must be divisible by heads (3)" in proc.stderr
    proc = cli("evaluate", "--method", "hyperreps", "--zoo", "mnist1d-cnn", "--set",
               "bandwith=0.1", ok=False)
    assert proc.returncode == 1 and "bandwith" in proc.stderr
