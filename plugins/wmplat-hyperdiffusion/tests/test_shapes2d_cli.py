"""End to end through the real command line, on the tiny test zoo."""

import base64
import hashlib
import json
import re

import pytest
import torch
from safetensors.torch import load_file

METRICS = {"chamfer_to_train", "chamfer_to_test", "mmd", "cov", "nna"}
FIGURES = ("nearest-train-shapes", "cd-to-train-histogram")


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_entry_point_registers_the_method_the_task_and_the_shape_metrics(cli):
    listed = {r["name"]: r for r in cli.json("plugins", "--json")}
    mine = {name for name, r in listed.items() if r["package"] == "wmplat-hyperdiffusion"}
    assert mine == {"hyperdiffusion", "shapes2d-field", *METRICS}
    assert listed["hyperdiffusion"]["kind"] == "method"
    assert listed["shapes2d-field"]["kind"] == "dataset"
    assert all(listed[m]["kind"] == "metric" and listed[m]["status"] == "ok" for m in METRICS)


def test_the_zoo_is_split_by_run_one_field_per_run(cli_zoo):
    manifest = json.loads((cli_zoo / "manifest.json").read_text())
    models = manifest["models"]
    assert manifest["task"] == "shapes2d-field"
    assert manifest["provenance"]["task_version"] == "2-tiny"
    sizes = [p["shape"] for p in manifest["param_spec"]]
    assert sum(s[0] * (s[1] if len(s) == 2 else 1) for s in sizes) == 2753
    train = [m["run"] for m in models if m["split"] == "train"]
    heldout = [m["run"] for m in models if m["split"] == "heldout"]
    assert len(train) == len(set(train)) == 10 and len(heldout) == len(set(heldout)) == 8
    assert not set(train) & set(heldout)
    assert [m["seed"] for m in models] == [m["run"] for m in models]


def test_building_the_zoo_again_gives_identical_files(cli, cli_zoo):
    before = {p.name: sha256(p) for p in cli_zoo.iterdir()}
    cli("zoo", "build", "shapes2d-field")
    assert {p.name: sha256(p) for p in cli_zoo.iterdir()} == before


def test_a_noise_evaluation_scores_every_row_with_the_shape_metrics(evaluated):
    assert {"noise(sigma=0.02)", "noise(sigma=0.04)", "average(k=16,same_run=False)",
            "replica", "gaussian", "interpolate", "fresh", "train"} <= set(evaluated)
    for label, (row, folder) in evaluated.items():
        metrics = row["metrics"]
        for name in ("chamfer_to_train_median", "chamfer_to_test_median", "mmd", "cov", "nna",
                     "accuracy_mean", "max_similarity_median", "min_l2_median",
                     "aligned_l2_median", "hull_residual_median", "novelty_auc"):
            assert metrics[name] is not None, f"{label}: {name} is null"
        assert 0 <= metrics["cov"] <= 1 and 0 <= metrics["nna"] <= 1, label
        # error consistency needs classifier errors: skipped, null, no per-sample values
        assert metrics["error_consistency_median"] is None
        per_sample = load_file(folder / "per_sample.safetensors")
        assert {"chamfer_to_train", "chamfer_to_test"} <= set(per_sample)
        assert "error_consistency" not in per_sample
        # quality is minus the least CD to a test shape
        assert (per_sample["accuracy"].double() + per_sample["chamfer_to_test"]).abs().max() \
            < 1e-6
        # 8 heldout runs are fewer than the 19 a conformal test at 0.05 needs
        assert row["verdict"] == "no-power"


def test_noise_runs_at_the_raw_sigmas_and_at_one_relative_to_the_zoos_weight_scale(
        cli_zoo, evaluated):
    manifest = json.loads((cli_zoo / "manifest.json").read_text())
    weights = load_file(cli_zoo / "weights.safetensors")
    train = [m["split"] == "train" for m in manifest["models"]]
    flat = torch.cat([weights[p["name"]][train].flatten(1) for p in manifest["param_spec"]],
                     dim=1)
    scale = manifest["provenance"]["baseline_settings"]["noise"][2]["weight_scale"]
    assert scale == pytest.approx(1 / float(flat.double().std()), rel=1e-3)
    assert {"noise(sigma=0.02)", "noise(sigma=0.04)",
            f"noise(sigma=0.1,weight_scale={scale})"} <= set(evaluated)
    # sigma 0.1 on the scaled weights is 0.1 / scale on the raw ones: min L2 ~ that * sqrt(P)
    row, _ = evaluated[f"noise(sigma=0.1,weight_scale={scale})"]
    expected = 0.1 / scale * flat.shape[1] ** 0.5
    assert row["metrics"]["min_l2_median"] == pytest.approx(expected, rel=0.05)


def test_replicas_draw_exactly_the_training_shapes(evaluated):
    row, folder = evaluated["replica"]
    per_sample = load_file(folder / "per_sample.safetensors")
    assert (per_sample["chamfer_to_train"] == 0).all()
    assert (per_sample["max_similarity"] == 1).all()
    fresh, _ = evaluated["fresh"]
    assert fresh["metrics"]["chamfer_to_train_median"] > 0


def test_every_row_stores_the_two_shape_figures(evaluated):
    for label, (_, folder) in evaluated.items():
        index = json.loads((folder / "figures.json").read_text())["figures"]
        assert {(f["name"], f["kind"], f["producer"]) for f in index} == {
            (name, "metric", "chamfer_to_train") for name in FIGURES}, label
        for name in FIGURES:
            png = (folder / "figures" / f"{name}.png").read_bytes()
            assert png.startswith(b"\x89PNG") and len(png) < 200_000, (label, name)


def test_the_leaderboard_shows_the_shape_columns(cli, evaluated):
    _, folder = evaluated["replica"]
    results = folder.parents[2]
    table = cli("leaderboard", "--results-dir", str(results)).stdout
    for column in ("chamfer_to_test_median", "chamfer_to_train_median", "mmd", "cov", "nna"):
        assert column in table
    assert "kappa" not in table     # error consistency: null in every row, no column


def test_hyperdiffusion_evaluates_on_its_zoo_through_the_command_line(cli, cli_zoo,
                                                                     tmp_path):
    tiny = ["--set", "width=16", "--set", "layers=1", "--set", "heads=2", "--set", "steps=20",
            "--set", "timesteps=50", "--set", "ddim_steps=10"]
    cli("evaluate", "--method", "hyperdiffusion", "--zoo", "shapes2d-field", "--samples", "6",
        "--results-dir", str(tmp_path), *tiny)
    [row] = [r for r in cli.json("leaderboard", "--results-dir", str(tmp_path), "--format",
                                 "json") if r["method"] == "hyperdiffusion"]
    assert row["kind"] == "method" and row["n_samples"] == 6
    assert row["config"]["steps"] == 20 and row["verdict"] == "no-power"
    assert row["metrics"]["chamfer_to_train_median"] is not None
    # the method's row has the shape figures, and the HTML report shows them under its label
    [folder] = [p.parent for p in tmp_path.glob("shapes2d-field*/hyperdiffusion/*/result.json")]
    page = tmp_path / "report.html"
    cli("leaderboard", "--results-dir", str(tmp_path), "--format", "html", "--output",
        str(page))
    html = page.read_text()
    label = next(r for r in re.findall(r'data-row="([^"]*)"', html)
                 if r.startswith("hyperdiffusion"))
    for name in FIGURES:
        png = (folder / "figures" / f"{name}.png").read_bytes()
        [shown] = re.findall(rf'data-row="{re.escape(label)}" data-name="{name}">\n'
                             r'<img src="data:image/png;base64,([^"]+)"', html)
        assert base64.b64decode(shown) == png
