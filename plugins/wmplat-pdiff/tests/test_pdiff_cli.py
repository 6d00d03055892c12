"""Through the real command line, with the package pip-installed into a fresh folder:
discovery by entry point, the zoo build, and a tiny evaluation of `pdiff`."""

import hashlib
import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

TINY_SETS = ["--set", "channels=4", "--set", "ae_steps=20", "--set", "ddpm_steps=20",
             "--set", "timesteps=50", "--set", "denoiser_width=32"]


def _zoo_files(home):
    folder = home / "zoos" / "digits-pdiff"
    manifest = json.loads((folder / "manifest.json").read_text())
    return manifest, folder / "weights.safetensors"


@pytest.fixture(scope="module")
def built(wmplat_cli, tmp_path_factory):
    wmplat_cli("zoo", "build", "digits-pdiff", cwd=tmp_path_factory.mktemp("cwd"))
    return _zoo_files(wmplat_cli.home)


@pytest.fixture(scope="module")
def evaluation(wmplat_cli, built, tmp_path_factory):
    cwd = tmp_path_factory.mktemp("eval")
    proc = wmplat_cli("evaluate", "--method", "pdiff", "--zoo", "digits-pdiff", "--samples",
                      "8", "--results-dir", str(cwd / "results"), *TINY_SETS, cwd=cwd)
    return proc, cwd / "results"


def test_plugins_lists_the_method_and_the_dataset_from_this_package(wmplat_cli, tmp_path):
    rows = json.loads(wmplat_cli("plugins", "--json", cwd=tmp_path).stdout)
    mine = {r["name"]: r for r in rows if r["package"] == "wmplat-pdiff"}
    assert mine == {
        "pdiff": {"name": "pdiff", "kind": "method", "package": "wmplat-pdiff",
                  "version": "0.1.0", "status": "ok"},
        "digits-pdiff": {"name": "digits-pdiff", "kind": "dataset", "package": "wmplat-pdiff",
                         "version": "0.1.0", "status": "ok"},
    }


def test_the_zoo_is_one_run_of_iterates_beside_independent_heldout_runs(built):
    manifest, weights_file = built
    train = [m for m in manifest["models"] if m["split"] == "train"]
    heldout = [m for m in manifest["models"] if m["split"] == "heldout"]
    assert len(train) == 200 and {m["run"] for m in train} == {0}
    assert [m["step"] for m in train] == list(range(401, 601))
    assert len(heldout) == 160 and len({m["run"] for m in heldout}) == 32
    assert min(m["quality"] for m in manifest["models"]) > 0.9

    tensors = load_file(weights_file)
    for name, stacked in tensors.items():
        frozen = bool((stacked == stacked[0]).all())
        assert frozen == (not name.startswith("norm")), name


def test_rebuilding_the_zoo_gives_the_same_files(built, another_wmplat_cli, tmp_path):
    another_wmplat_cli("zoo", "build", "digits-pdiff", cwd=tmp_path)
    manifest, weights_file = _zoo_files(another_wmplat_cli.home)
    first_manifest, first_weights = built
    digest = [hashlib.sha256(f.read_bytes()).hexdigest() for f in (weights_file, first_weights)]
    assert digest[0] == digest[1]
    assert manifest["models"] == first_manifest["models"]


def test_a_tiny_evaluation_writes_a_method_row_beside_baselines_and_fresh_runs(evaluation):
    proc, results = evaluation
    assert "pdiff: generating norm1.weight, norm1.bias, norm2.weight, norm2.bias" in proc.stderr
    assert "pdiff: autoencoder loss" in proc.stderr
    [row_file] = results.glob("digits-pdiff@*/pdiff/*/result.json")  # <zoo>@<revision>
    row = json.loads(row_file.read_text())
    assert (row["method"], row["kind"], row["method_version"]) == ("pdiff", "method", "0.1.0")
    assert row["n_samples"] == 8 and row["seed"] == 0
    assert row["verdict"] in {"novel", "interpolates", "memorizes", "degraded"}
    assert row["config"]["ae_steps"] == 20 and row["config"]["input_noise"] == 0.001
    assert 0 <= row["metrics"]["accuracy_mean"] <= 1
    kinds = {r.parent.parent.name for r in results.glob("digits-pdiff@*/*/*/result.json")}
    assert {"pdiff", "noise", "average", "fresh", "train"} <= kinds


def test_the_same_seed_reproduces_the_samples(wmplat_cli, evaluation, tmp_path):
    _, results = evaluation
    [folder] = results.glob("digits-pdiff@*/pdiff/*/")
    first = load_file(folder / "per_sample.safetensors")
    # the baselines' and references' rows are reused from a copy; pdiff runs again
    again = tmp_path / "results"
    shutil.copytree(results, again, ignore=shutil.ignore_patterns("pdiff"))
    wmplat_cli("evaluate", "--method", "pdiff", "--zoo", "digits-pdiff", "--samples", "8",
               "--results-dir", str(again), *TINY_SETS, cwd=tmp_path)
    [rerun] = again.glob("digits-pdiff@*/pdiff/*/per_sample.safetensors")
    rerun = load_file(rerun)
    # exact distances of each sample to its nearest train checkpoint: equal samples
    assert torch.equal(first["min_l2"], rerun["min_l2"])
    assert torch.equal(first["accuracy"], rerun["accuracy"])


def test_a_bad_option_is_named_and_nothing_is_written(wmplat_cli, tmp_path):
    proc = wmplat_cli("evaluate", "--method", "pdiff", "--zoo", "digits-pdiff", "--set",
                      "fold=1", cwd=tmp_path, ok=False)
    assert proc.returncode == 1
    assert "fold" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "wmplat-results").exists()
