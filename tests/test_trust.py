"""The trust model (docs/trust.md): a method sees the train split only, through `TrainZoo`;
every route to the heldout runs the API cannot close is detected, and the row is `invalid`."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from wmplat.evaluation.heldout_copies import copy_radius, heldout_l2, is_copy, train_separation
from wmplat.plugins import load_plugins
from wmplat.zoo.catalogue import open_zoo
from wmplat.zoo.format import MANIFEST, WEIGHTS, independent_units, sha256_file

TRAIN_VIEW_MEMBERS = {"name", "num_params", "param_spec", "task", "provenance", "flatten",
                      "unflatten", "train_weights", "train_models", "heldout_weights",
                      "heldout_models"}
TASK_VIEW_MEMBERS = {"name", "quality_name", "param_spec", "permutation_groups", "behaviour",
                     "quality", "similarity", "model_metadata"}


@pytest.fixture(scope="module")
def zoo(default_zoo):
    return open_zoo(str(default_zoo), load_plugins())


def public(obj) -> set[str]:
    return {n for n in dir(obj) if not n.startswith("_")}


def test_a_method_is_given_exactly_the_documented_members(zoo):
    view = zoo.without_heldout()
    assert public(view) == TRAIN_VIEW_MEMBERS
    assert public(view.task) == TASK_VIEW_MEMBERS
    assert not hasattr(view.task, "train_runs") and not hasattr(view.task, "build_zoo")


def test_the_train_view_holds_the_train_split_and_no_reference_to_the_zoo(zoo):
    view = zoo.without_heldout()
    assert torch.equal(view.train_weights(), zoo.train_weights())
    assert {m.split for m in view.train_models()} == {"train"}
    assert len(view.train_models()) == len(zoo.train_models())
    reachable = [getattr(view, slot) for slot in type(view).__slots__]
    assert not any(r is zoo or r is zoo.manifest for r in reachable)
    assert view.task._task is zoo.task   # the task instance, which holds no zoo
    assert not any(isinstance(v, type(zoo)) for v in vars(zoo.task).values())


def test_a_method_cannot_change_the_zoo_through_its_view(zoo):
    view = zoo.without_heldout()
    view.train_weights().zero_()
    view.train_models()[0].quality = -1.0
    assert torch.equal(view.train_weights(), zoo.train_weights())
    assert view.train_models()[0].quality == zoo.train_models()[0].quality


def test_provenance_reaches_the_method_without_seeds(zoo):
    recipe = zoo.manifest.provenance["recipe"]
    assert recipe["seeds"] == "run r uses seed r"
    seen = zoo.without_heldout().provenance
    assert "seeds" not in seen["recipe"] and seen["recipe"]["lr"] == recipe["lr"]
    assert "seed" not in json.dumps(seen).lower()


# These two search the process's objects and stack for the zoo: they run in a process of their
# own, which holds the evaluation's objects only, not those of other tests.
SEARCH_THE_PROCESS = {"cheat-gc", "cheat-frames"}


@pytest.fixture
def cheat(cli, cli_process, use_plugin, install_plugin):
    """cheat(method) -> the CLI runner and env that run the test plugin wmplat-cheat's method."""
    def runner(method):
        if method in SEARCH_THE_PROCESS:
            return cli_process, install_plugin("wmplat-cheat")
        use_plugin("wmplat-cheat")
        return cli, {}

    return runner


def method_row(cli, env, method, samples="8"):
    proc = cli("evaluate", "--method", method, "--samples", samples, env=env)
    [path] = (cli.cwd / "wmplat-results").rglob(f"{method}/*/result.json")
    return proc, json.loads(path.read_text())


@pytest.mark.parametrize("method", ["cheat-disk", "cheat-near-copy", "cheat-gc",
                                    "cheat-frames", "cheat-open-zoo", "cheat-retrain"])
def test_every_route_to_the_heldout_runs_makes_the_row_invalid(cheat, default_zoo, method):
    cli, env = cheat(method)
    proc, row = method_row(cli, env, method)
    assert row["verdict"] == "invalid"
    assert row["metrics"]["heldout_copy_rate"] == 1.0
    line = next(x for x in proc.stdout.splitlines() if x.startswith(method))
    assert line.split()[-1] == "INVALID"
    assert f"! INVALID {method} (seed 0): 8 of its 8 samples are copies of heldout runs" \
        in proc.stdout
    references = {json.loads(p.read_text())["method"]: json.loads(p.read_text())
                  for p in (cli.cwd / "wmplat-results").rglob("reference/result.json")}
    assert {r["verdict"] for r in references.values()} == {"novel"}
    assert {r["metrics"]["heldout_copy_rate"] for r in references.values()} == {0.0}


def test_the_task_a_method_is_given_cannot_train_the_heldout_runs(cheat, default_zoo):
    cli, env = cheat("cheat-task-view")
    proc = cli("evaluate", "--method", "cheat-task-view", "--samples", "8", env=env, ok=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "'TaskView' object has no attribute 'train_runs'" in proc.stderr


def test_one_leaked_sample_among_training_copies_invalidates_the_row(cheat, default_zoo):
    cli, env = cheat("cheat-one-leak")
    proc, row = method_row(cli, env, "cheat-one-leak")
    assert row["verdict"] == "invalid" and row["metrics"]["heldout_copy_rate"] == 1 / 8
    per_sample = load_file(next((cli.cwd / "wmplat-results").rglob(
        "cheat-one-leak/*/per_sample.safetensors")))
    assert per_sample["heldout_copy"].tolist() == [i == 4 for i in range(8)]
    markdown = cli("leaderboard", "--format", "markdown").stdout
    assert "> **INVALID cheat-one-leak (seed 0): 1 of its 8 samples" in markdown
    report = cli.cwd / "leaderboard.html"
    cli("leaderboard", "--format", "html", "--output", str(report))
    html = report.read_text()
    assert '<p class="invalid" role="alert">INVALID cheat-one-leak' in html
    assert '<td class="text verdict invalid">invalid</td>' in html


@pytest.mark.xdist_group("new-seed-runs")
def test_runs_trained_from_new_seeds_never_read_as_heldout_copies(zoo, new_seed_runs):
    """Calibration: 200 runs from seeds the zoo never used, each judged like a sample."""
    finals = new_seed_runs
    assert len(finals) == 200
    heldout = zoo.heldout_weights()
    units = torch.tensor(independent_units(zoo.heldout_models()))
    spec, groups = zoo.param_spec, zoo.task.permutation_groups
    from wmplat.evaluation.runner import final_checkpoints

    reference, reference_units = final_checkpoints(zoo, "heldout")
    train_finals, train_units = final_checkpoints(zoo, "train")
    radius = copy_radius(
        heldout_l2(reference, heldout, spec, groups, reference_units, units),
        *train_separation(zoo.train_weights(), torch.tensor(independent_units(
            zoo.train_models())), train_finals, train_units, heldout, spec, groups))
    assert 6 < radius < 6.5   # docs/trust.md quotes it (6.1)
    distance = heldout_l2(finals, heldout, spec, groups)
    assert not is_copy(distance, radius).any()
    # and a checkpoint of a heldout run other than the one the null uses is a copy
    assert is_copy(heldout_l2(heldout[:5], heldout, spec, groups), radius).all()


def test_a_zoo_whose_heldout_split_copies_train_checkpoints_is_refused(cli, default_zoo,
                                                                      tmp_path):
    folder = tmp_path / "leaky"
    folder.mkdir()
    manifest = json.loads((default_zoo / MANIFEST).read_text())
    tensors = load_file(default_zoo / WEIGHTS)
    heldout = [i for i, m in enumerate(manifest["models"]) if m["split"] == "heldout"]
    leaked = manifest["models"][heldout[7]]["id"]
    for name in tensors:
        tensors[name][heldout[7]] = tensors[name][12]   # a train checkpoint
    save_file(tensors, folder / WEIGHTS)
    manifest["files"] = [{"path": WEIGHTS, "sha256": sha256_file(folder / WEIGHTS)}]
    (folder / MANIFEST).write_text(json.dumps(manifest))
    proc = cli("zoo", "info", str(folder), ok=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    train_id = manifest["models"][12]["id"]
    assert f"1 heldout models copy train checkpoints: {leaked} ~ {train_id} (L2 0)" in proc.stderr
    assert "the splits are not independent" in proc.stderr
