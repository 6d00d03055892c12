"""`wmplat zoo import --format modelzoos` on a small synthetic copy of Schürholt et al.'s
layout, written here from the default zoo's checkpoints: Ray Tune trial folders with
checkpoint_<e>/checkpoints state dicts under `module_list.` keys, result.json lines and an
initialisation checkpoint_000000; an unfinished trial; root files that must never be opened."""

import json
import pickle

import pytest
import test_zoo_import
import torch
from safetensors.torch import load_file
from test_file_zoo import digits_file_task

from wmplat.zoo.format import load_zoo, read_manifest

RUNS = range(8)


# this module's own $WMPLAT_HOME, autouse: its imported zoos are listed by no other test
import_home = test_zoo_import.import_home


class Code:
    """A pickle that needs this class to load: a root file no import may open."""


def write_modelzoos(default_zoo, root):
    manifest = read_manifest(default_zoo)
    tensors = load_file(default_zoo / "weights.safetensors")
    prefix = {"fc1": "module_list.0", "fc2": "module_list.2"}
    for run in RUNS:
        trial = root / f"NN_tune_trainable_{run:05d}_{run}_seed={run}"
        models = [(i, m) for i, m in enumerate(manifest.models) if m.run == run]
        lines = []
        for e, (i, m) in enumerate(models, 1):
            folder = trial / f"checkpoint_{e:06d}"
            folder.mkdir(parents=True)
            torch.save({f"{prefix[k.split('.')[0]]}.{k.split('.')[1]}": v[i].clone()
                        for k, v in tensors.items()}, folder / "checkpoints")
            torch.save({"state": {}, "param_groups": []}, folder / "optimizer")
            lines.append({"training_iteration": e, "test_acc": m.quality, "test_loss": 0.1,
                          "train_acc": 1.0, "config": {"seed": 100 + m.seed,
                                                       "model::type": "MLP"}})
        init = trial / "checkpoint_000000"
        init.mkdir()
        torch.manual_seed(run)
        torch.save({"module_list.0.weight": torch.randn(32, 64) * 0.1,
                    "module_list.0.bias": torch.zeros(32),
                    "module_list.2.weight": torch.randn(10, 32) * 0.1,
                    "module_list.2.bias": torch.zeros(10)}, init / "checkpoints")
        (trial / "result.json").write_text("".join(json.dumps(x) + "\n" for x in lines))
        (trial / "params.json").write_text(json.dumps(lines[0]["config"]))
    (root / "NN_tune_trainable_unfinished").mkdir()
    (root / "NN_tune_trainable_unfinished" / "params.json").write_text("{}")
    (root / "dataset.pt").write_bytes(pickle.dumps(Code()))
    (root / "config.json").write_text("not json")
    return root


@pytest.fixture(scope="module")
def imported(tmp_path_factory, default_zoo, import_home):
    from conftest import Cli

    src = write_modelzoos(default_zoo, tmp_path_factory.mktemp("modelzoo-digits"))
    task = digits_file_task(tmp_path_factory.mktemp("task"))
    cli = Cli(tmp_path_factory.mktemp("cwd"))
    proc = cli("zoo", "import", str(src), "--format", "modelzoos", "--task", str(task.path),
               "--name", "digits-modelzoos", "--heldout", "0.25")
    return import_home / "zoos" / "digits-modelzoos", proc, src


def test_trials_become_runs_with_steps_seeds_and_recorded_qualities(imported, default_zoo):
    folder, proc, _ = imported
    zoo = load_zoo(folder)
    models = zoo.manifest.models
    assert len(models) == 8 * 6 and {m.run for m in models} == set(RUNS)
    assert {m.step for m in models} == set(range(6))          # the initialisation is step 0
    recorded = {}          # the default zoo's qualities of each run, in checkpoint order
    for m in read_manifest(default_zoo).models:
        recorded.setdefault(m.run, []).append(m)
    for m in models:
        assert m.seed == 100 + recorded[m.run][0].seed        # config.seed of result.json
        if m.step > 0:
            assert m.quality == pytest.approx(recorded[m.run][m.step - 1].quality, abs=1e-6)
        else:
            assert m.quality < 0.5                             # an untrained initialisation
    assert zoo.manifest.provenance["quality_check"]["compared"] == 40
    assert zoo.manifest.provenance["quality_check"]["beyond_one_example"] == 0
    assert len(zoo.manifest.provenance["split"]["heldout_runs"]) == 2


def test_it_says_what_it_skipped_and_warns_of_too_few_heldout_runs(imported):
    _, proc, src = imported
    unfinished = src / "NN_tune_trainable_unfinished"
    assert f"warning: {unfinished}: no checkpoints, skipped" in proc.stderr
    assert "warning: zoo 'digits-modelzoos' has 2 heldout runs" in proc.stderr


def test_info_names_the_format_and_source(imported, cli):
    _, _, src = imported
    out = cli("zoo", "info", "digits-modelzoos").stdout
    assert f"source   imported (modelzoos) from {src}" in out
    assert "train    36 models from 6 runs (6 per run)" in out


def test_a_trial_whose_state_dict_needs_code_is_refused_and_nothing_written(
        tmp_path, default_zoo, cli, import_home):
    src = write_modelzoos(default_zoo, tmp_path / "src")
    bad = sorted(src.glob("NN_tune_trainable_00002*/checkpoint_000003"))[0] / "checkpoints"
    torch.save({"module_list.0.weight": Code()}, bad)
    task = digits_file_task(tmp_path / "task")
    proc = cli("zoo", "import", str(src), "--format", "modelzoos", "--task", str(task.path),
               "--name", "bad-modelzoos", "--heldout", "0.25", ok=False)
    (line,) = [x for x in proc.stderr.splitlines() if not x.startswith("warning")]
    assert line.startswith(f"error: {bad}: needs code to unpickle")
    assert not (import_home / "zoos" / "bad-modelzoos").exists()


def test_min_step_leaves_the_initialisations_out(tmp_path, default_zoo, cli, import_home):
    src = write_modelzoos(default_zoo, tmp_path / "src")
    task = digits_file_task(tmp_path / "task")
    cli("zoo", "import", str(src), "--format", "modelzoos", "--task", str(task.path),
        "--name", "trained-only", "--heldout", "0.25", "--min-step", "1")
    manifest = read_manifest(import_home / "zoos" / "trained-only")
    assert len(manifest.models) == 40 and min(m.step for m in manifest.models) == 1
    assert manifest.provenance["min_step"] == 1


def test_pushed_by_name_then_pulled_into_an_empty_home_and_evaluated(cli_process, hub,
                                                                      tmp_path, default_zoo):
    """Without the initialisations, which lie so close together across runs that a copied one
    counts as a copy of a heldout run's (the row would be invalid). As processes: the Hugging
    Face clients read their cache settings once, at import."""
    import yaml

    src = write_modelzoos(default_zoo, tmp_path / "src")
    task = digits_file_task(tmp_path / "task")
    cli_process("zoo", "import", str(src), "--format", "modelzoos", "--task", str(task.path),
                "--name", "to-push", "--heldout", "0.25", "--min-step", "1")
    cli_process("zoo", "push", "to-push", "--repo", "wmplat-tester/digits-modelzoos")
    commit = hub.head("wmplat-tester/digits-modelzoos")
    registry = tmp_path / "zoos.yaml"
    registry.write_text(yaml.safe_dump({"schema_version": 1, "zoos": {"hub-modelzoos": {
        "source": "hub", "repo_id": "wmplat-tester/digits-modelzoos", "revision": commit,
        "task": "module"}}}))
    empty = {"WMPLAT_HOME": str(tmp_path / "empty-home")}
    cli_process("--registry", str(registry), "evaluate", "--method", "copycat", "--zoo",
                "hub-modelzoos", "--samples", "8", env=empty)
    board = cli_process.json("leaderboard", "--format", "json", env=empty)
    rows = {r["method"]: r for r in board}
    assert rows["copycat"]["zoo_revision"] == commit and rows["copycat"]["task"] == "digits-file"
    assert rows["copycat"]["verdict"] == "no-power"     # two heldout runs, on any machine


@pytest.mark.parametrize("line, says", [
    ("{not json", "not JSON"),
    ("[1, 2]", "not a JSON object"),
    ('{"test_acc": 0.9}', "a result line needs an integer training_iteration"),
])
def test_a_bad_result_line_is_one_line_naming_file_and_line(tmp_path, default_zoo, cli,
                                                            import_home, line, says):
    src = write_modelzoos(default_zoo, tmp_path / "src")
    result = sorted(src.glob("NN_tune_trainable_0000*"))[2] / "result.json"
    result.write_text(result.read_text() + line + "\n")
    task = digits_file_task(tmp_path / "task")
    err = cli("zoo", "import", str(src), "--format", "modelzoos", "--task", str(task.path),
              "--name", "bad-lines", "--heldout", "0.25", ok=False).stderr
    [error] = [line for line in err.splitlines() if not line.startswith("warning: ")]
    assert error == f"error: {result}:6: {says}" or error.startswith(f"error: {result}:6: {says}")
    assert not (import_home / "zoos" / "bad-lines").exists()
