"""`wmplat zoo import --format statedict`, through the CLI: the default zoo's own checkpoints
written as a folder of state dicts under its own key names come back as the same weights and
qualities; copycat memorizes on the import; every bad input is one line and writes nothing."""

import csv
import os
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from test_file_zoo import digits_file_task

from wmplat.tasks.digits_mlp import DigitsMLP
from wmplat.zoo.format import load_zoo, read_manifest
from wmplat.zoo.params import unflatten


@pytest.fixture(scope="module", autouse=True)
def import_home(tmp_path_factory, default_zoo):
    """A $WMPLAT_HOME of the module's own, so that the zoos it imports are listed by no other
    test's `zoo list`; the default zoo, a source here, stays in the shared home."""
    shared = os.environ["WMPLAT_HOME"]
    os.environ["WMPLAT_HOME"] = str(tmp_path_factory.mktemp("import-home"))
    yield Path(os.environ["WMPLAT_HOME"])
    os.environ["WMPLAT_HOME"] = shared


PATTERN = r"run(?P<run>\d+)/step(?P<step>\d+)\.(safetensors|pt)"
RENAMES = ["--rename", r"^fc1\.=0.", "--rename", r"^fc2\.=2."]


def write_state_dicts(default_zoo, folder, runs=None, torch_format=False):
    """One file per checkpoint, run<r>/step<s>, under digits-mlp's key names (fc1, fc2), and
    a metadata CSV with the recorded test accuracy."""
    manifest = read_manifest(default_zoo)
    tensors = load_file(default_zoo / "weights.safetensors")
    rows = []
    for i, m in enumerate(manifest.models):
        if runs is not None and m.run not in runs:
            continue
        path = folder / f"run{m.run}" / f"step{m.step}.{'pt' if torch_format else 'safetensors'}"
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {k: v[i].clone() for k, v in tensors.items()}
        torch.save(state, path) if torch_format else save_file(state, path)
        rows.append({"run": m.run, "step": m.step, "seed": m.seed, "test_acc": m.quality})
    with open(folder / "metadata.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return folder


@pytest.fixture(scope="module")
def source(tmp_path_factory, default_zoo):
    return write_state_dicts(default_zoo, tmp_path_factory.mktemp("ckpts"))


@pytest.fixture(scope="module")
def task_path(tmp_path_factory):
    return digits_file_task(tmp_path_factory.mktemp("task")).path


def heldout_of(default_zoo) -> str:
    return ",".join(str(r) for r in sorted({m.run for m in read_manifest(default_zoo).models
                                            if m.split == "heldout"}))


def import_args(source, task_path, name, *extra):
    return ("zoo", "import", str(source), "--format", "statedict", "--task", str(task_path),
            "--name", name, "--pattern", PATTERN, *RENAMES, *extra)


@pytest.fixture(scope="module")
def imported(source, task_path, default_zoo, import_home, tmp_path_factory):
    from conftest import Cli

    cli = Cli(tmp_path_factory.mktemp("cwd"))
    proc = cli(*import_args(source, task_path, "digits-import", "--metadata",
                            str(source / "metadata.csv"), "--heldout-runs",
                            heldout_of(default_zoo)))
    return import_home / "zoos" / "digits-import", proc


def test_a_round_trip_gives_the_same_weights_qualities_and_split(imported, default_zoo):
    folder, proc = imported
    assert proc.stdout.strip() == str(folder)
    assert "warning" not in proc.stderr          # recorded and recomputed qualities agree
    zoo, original = load_zoo(folder), load_zoo(default_zoo, DigitsMLP())
    key = {m.id: m for m in original.manifest.models}
    for split in ("train", "heldout"):
        ours = {f"run{m.run:03d}-step{m.step}": i
                for i, m in enumerate(getattr(zoo, f"{split}_models")())}
        theirs = getattr(original, f"{split}_models")()
        order = [ours[m.id] for m in theirs]
        got = unflatten(getattr(zoo, f"{split}_weights")()[order], zoo.param_spec)
        want = unflatten(getattr(original, f"{split}_weights")(), original.param_spec)
        for a, b in (("0", "fc1"), ("2", "fc2")):
            for kind in ("weight", "bias"):
                assert torch.equal(got[f"{a}.{kind}"], want[f"{b}.{kind}"])
        models = getattr(zoo, f"{split}_models")()
        for i, m in zip(order, theirs, strict=True):
            assert models[i].quality == pytest.approx(key[m.id].quality, abs=1e-6)
            assert (models[i].run, models[i].seed) == (m.run, m.seed)
    provenance = zoo.manifest.provenance
    assert provenance["format"] == "statedict" and provenance["quality_check"]["compared"] == 480
    assert provenance["split"]["heldout_runs"] == sorted({m.run for m in original.heldout_models()})


def test_it_is_listed_and_opens_by_name(imported, cli):
    listed = cli("zoo", "list").stdout
    assert any(line.startswith("digits-import  (local: imported; cached)")
               for line in listed.splitlines())
    info = cli("zoo", "info", "digits-import")
    lines = info.stdout.splitlines()
    assert lines[0].startswith("train    320 models from 64 runs (5 per run), quality 0.9")
    assert lines[1].startswith("heldout  160 models from 32 runs (5 per run), quality 0.9")
    assert "task     digits-file" in lines
    assert "symmetry 1 permutation group: 0.out (32 units)" in lines
    assert any(line.startswith("source   imported (statedict) from ") for line in lines)
    assert "warning" not in info.stderr           # 32 heldout runs are enough


def test_copycat_memorizes_on_the_import_and_fresh_does_not(imported, cli, default_zoo):
    cli("evaluate", "--method", "copycat", "--zoo", "digits-import", "--samples", "20")
    table = cli.json("leaderboard", "--format", "json")
    rows = {r["method"]: r for r in table}
    assert rows["copycat"]["verdict"] == "memorizes" and rows["copycat"]["zoo"] == "digits-import"
    assert rows["fresh"]["verdict"] != "memorizes"
    # the noise baseline at 0.1 and 1 times the train checkpoints' median per-parameter spread
    train = load_zoo(default_zoo, DigitsMLP()).train_weights().double()
    spread = float(train.std(dim=0).median())
    sigmas = sorted(r["config"]["sigma"] for r in table if r["method"] == "noise")
    assert sigmas == [pytest.approx(0.1 * spread, rel=1e-2), pytest.approx(spread, rel=1e-2)]


def test_a_seeded_fraction_draws_the_same_runs_and_records_them(source, task_path, cli,
                                                                 import_home, default_zoo):
    small = write_state_dicts(default_zoo, cli.cwd / "small", runs=set(range(0, 96, 4)))
    for name in ("drawn-a", "drawn-b"):
        cli(*import_args(small, task_path, name, "--heldout", "0.5", "--seed", "3"))
    a, b = (read_manifest(import_home / "zoos" / n).provenance["split"]
            for n in ("drawn-a", "drawn-b"))
    assert a == b and a["seed"] == 3 and a["fraction"] == 0.5 and len(a["heldout_runs"]) == 12
    models = read_manifest(import_home / "zoos" / "drawn-a").models
    assert {m.run for m in models if m.split == "heldout"} == set(a["heldout_runs"])


def test_torch_files_load_with_weights_only(task_path, cli, import_home, default_zoo):
    src = write_state_dicts(default_zoo, cli.cwd / "pt", runs={0, 1, 2}, torch_format=True)
    cli(*import_args(src, task_path, "digits-pt", "--heldout-runs", "2"))
    assert len(read_manifest(import_home / "zoos" / "digits-pt").models) == 15


# --- bad input: one line naming the file and key, nothing written ------------------------------

class Code:
    """Needs code to unpickle."""


def spoil(folder, how):
    path = folder / "run1" / "step9.safetensors"
    state = load_file(path)
    if how == "pickle":
        path.unlink()
        torch.save({"model": Code()}, folder / "run1" / "step9.pt")
        return
    if how == "nan":
        state["fc1.bias"][3] = float("nan")
    elif how == "missing":
        del state["fc2.bias"]
    elif how == "extra":
        state["fc3.weight"] = torch.zeros(3)
    elif how == "shape":
        state["fc2.weight"] = torch.zeros(10, 31)
    elif how == "integer":
        state["fc1.bias"] = state["fc1.bias"].long()
    save_file(state, path)


@pytest.mark.parametrize(("how", "message"), [
    ("pickle", r"run1/step9\.pt: needs code to unpickle, which wmplat never runs .*"
               r"re-save the state dict alone"),
    ("nan", r"run1/step9\.safetensors: key '0\.bias' contains NaN"),
    ("missing", r"run1/step9\.safetensors: key '2\.bias' of the task is missing"),
    ("extra", r"run1/step9\.safetensors: key 'fc3\.weight' is not a parameter of the task"),
    ("shape", r"run1/step9\.safetensors: key '2\.weight' has shape \[10, 31\], the task's "
              r"architecture expects \[10, 32\]"),
    ("integer", r"run1/step9\.safetensors: key '0\.bias' has dtype int64; weights must be "
                "floating point"),
])
def test_a_bad_checkpoint_stops_the_import_naming_file_and_key(how, message, task_path, cli,
                                                               import_home, default_zoo):
    src = write_state_dicts(default_zoo, cli.cwd / "src", runs={0, 1})
    (src / "run1" / "step9.safetensors").write_bytes(
        (src / "run1" / "step1066.safetensors").read_bytes())
    spoil(src, how)
    proc = cli(*import_args(src, task_path, f"bad-{how}", "--heldout-runs", "1"), ok=False)
    assert proc.returncode == 1
    (line,) = proc.stderr.strip().splitlines()
    assert re.search("^error: .*" + message, line), line
    zoos = import_home / "zoos"     # absent when no test before this one imported a zoo
    assert not (zoos / f"bad-{how}").exists()
    assert not any(p.name.startswith(f".bad-{how}.") and "tmp" in p.name
                   for p in (zoos.iterdir() if zoos.is_dir() else ()))


def test_too_few_heldout_runs_are_warned_about_and_never_read_novel(task_path, cli,
                                                                      default_zoo):
    src = write_state_dicts(default_zoo, cli.cwd / "few", runs=set(range(8)))
    proc = cli(*import_args(src, task_path, "few-heldout", "--heldout-runs", "5,6,7"))
    assert "warning: zoo 'few-heldout' has 3 heldout runs" in proc.stderr
    assert "below 19 no sample can be flagged" in proc.stderr
    info = cli("zoo", "info", "few-heldout")
    assert "warning: zoo 'few-heldout' has 3 heldout runs" in info.stderr
    cli("evaluate", "--method", "copycat", "--zoo", "few-heldout", "--samples", "5")
    rows = {r["method"]: r for r in cli.json("leaderboard", "--format", "json")}
    assert rows["copycat"]["verdict"] == "no-power" and rows["fresh"]["verdict"] == "no-power"
    assert rows["copycat"]["metrics"]["novel_good_rate"] is None


def test_a_mismatched_recorded_quality_is_reported_with_the_worst(task_path, cli, default_zoo):
    src = write_state_dicts(default_zoo, cli.cwd / "off", runs={0, 1})
    rows = list(csv.DictReader(open(src / "metadata.csv")))
    rows[0]["test_acc"] = "0.5"
    with open(src / "metadata.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    proc = cli(*import_args(src, task_path, "off-quality", "--heldout-runs", "1",
                            "--metadata", str(src / "metadata.csv")))
    assert "1 of 10 checkpoints have a recomputed quality more than one test example" in proc.stderr
    assert f"run{rows[0]['run']}/step{rows[0]['step']}.safetensors: recorded 0.5000" in proc.stderr


def test_judge_says_no_power_below_nineteen_heldout_runs():
    from wmplat.evaluation.statistics import MIN_HELDOUT_RUNS, judge

    assert MIN_HELDOUT_RUNS == 19
    samples = {"min_l2": torch.zeros(4)}        # exact copies of training checkpoints
    for m, expected in ((18, "no-power"), (19, "memorizes")):
        null = {"min_l2": torch.linspace(1, 2, m)}
        assert judge(samples, null).summary["verdict"] == expected
    # the fresh row compares each heldout run with the m - 1 others
    for m, expected in ((19, "no-power"), (20, "novel")):
        null = {"min_l2": torch.linspace(1, 2, m)}
        assert judge(null, null, leave_one_out=True).summary["verdict"] == expected


def test_a_task_files_baselines_replace_the_imports_defaults(imported, tmp_path):
    import yaml

    from wmplat.evaluation.runner import baseline_jobs
    from wmplat.plugins import load_plugins
    from wmplat.tasks.file import load_task_file

    folder, _ = imported
    zoo = load_zoo(folder)
    defaults = zoo.manifest.provenance["baseline_settings"]["noise"]
    noise = [j.config for j in baseline_jobs(load_plugins(), zoo) if j.name == "noise"]
    assert [c["sigma"] for c in noise] == [s["sigma"] for s in defaults]
    spec = yaml.safe_load((folder / "task.yaml").read_text())
    (tmp_path / "digits-test.safetensors").write_bytes(
        (folder / "digits-test.safetensors").read_bytes())
    (tmp_path / "task.yaml").write_text(yaml.safe_dump(
        {**spec, "baselines": {"noise": [{"sigma": 0.05}]}}))
    zoo = load_zoo(folder, task=load_task_file(tmp_path / "task.yaml"))
    noise = [j.config for j in baseline_jobs(load_plugins(), zoo) if j.name == "noise"]
    assert [c["sigma"] for c in noise] == [0.05]


@pytest.mark.parametrize(("runs", "split", "message"), [
    ({0}, ("--heldout", "0.5"), "the source holds 1 run; a zoo is split by training run and "
                                "needs at least two: give the heldout runs from a second "
                                "folder with --heldout-from DIR"),
    ({0, 1}, ("--heldout-runs", "0,1"), "--heldout-runs names every run; leave some to train on"),
    ({0, 1}, ("--heldout-runs", "7"), r"--heldout-runs: no run 7 in the source \(runs: 0, 1\)"),
    ({0, 1}, ("--heldout", "1.5"), "--heldout 1.5: the fraction of runs held out must be "
                                   "between 0 and 1"),
])
def test_a_split_without_heldout_or_train_runs_is_one_line_and_writes_nothing(
        runs, split, message, task_path, cli, import_home, default_zoo):
    src = write_state_dicts(default_zoo, cli.cwd / "src", runs=runs)
    proc = cli(*import_args(src, task_path, "no-split", *split), ok=False)
    (line,) = proc.stderr.strip().splitlines()
    assert re.fullmatch("error: " + message, line), line
    assert not (import_home / "zoos" / "no-split").exists()


def test_a_source_of_one_run_takes_its_heldout_runs_from_a_second_folder(
        cli, default_zoo, task_path, tmp_path):
    """p-diff style: every checkpoint of the source is one run, so it cannot be split by run;
    the heldout runs come from --heldout-from, numbered after the source's."""
    one_run = write_state_dicts(default_zoo, tmp_path / "one-run", runs={3})
    others = write_state_dicts(default_zoo, tmp_path / "others", runs={70, 71})
    err = cli(*import_args(one_run, task_path, "one-run", "--heldout", "0.5"), ok=False).stderr
    assert "holds 1 run" in err and "--heldout-from DIR" in err and err.count("\n") == 1
    cli(*import_args(one_run, task_path, "one-run", "--heldout-from", str(others)))
    zoo = load_zoo(Path(os.environ["WMPLAT_HOME"]) / "zoos" / "one-run")
    assert {m.run for m in zoo.train_models()} == {3}
    assert {m.run for m in zoo.heldout_models()} == {4 + 70, 4 + 71}
    assert zoo.manifest.provenance["split"]["heldout_from"] == str(others.resolve())
    assert f"heldout runs from {others.resolve()}" in cli("zoo", "info", "one-run").stdout
    original = read_manifest(default_zoo).models
    steps = {(m.run, m.step): m.quality for m in original}
    assert all(m.quality == pytest.approx(steps[m.run - 4, m.step], abs=1e-6)
               for m in zoo.heldout_models())


@pytest.mark.parametrize("extra, message", [
    (["--heldout", "0.5"], "exactly one of --heldout FRACTION, --heldout-runs LIST and "
                           "--heldout-from DIR"),
    (["--heldout-from", "nowhere"], "--heldout-from nowhere: no such folder"),
])
def test_heldout_from_with_another_split_or_no_folder_is_one_line(cli, default_zoo, task_path,
                                                                   tmp_path, extra, message):
    others = write_state_dicts(default_zoo, tmp_path / "others", runs={70})
    args = extra if extra[0] == "--heldout-from" else [*extra, "--heldout-from", str(others)]
    err = cli(*import_args(others, task_path, "bad-split", *args), ok=False).stderr
    assert message in err and err.count("\n") == 1
    assert not (Path(os.environ["WMPLAT_HOME"]) / "zoos" / "bad-split").exists()


def test_a_bad_line_of_json_lines_metadata_is_one_line_naming_it(cli, default_zoo, task_path,
                                                                 tmp_path):
    src = write_state_dicts(default_zoo, tmp_path / "src", runs={1, 2})
    metadata = tmp_path / "metadata.jsonl"
    metadata.write_text('{"run": 1, "step": 5, "seed": 1}\n\n{"run": 2,\n')
    err = cli(*import_args(src, task_path, "bad-metadata", "--metadata", str(metadata),
                           "--heldout-runs", "2"), ok=False).stderr
    assert f"--metadata {metadata}:3: not JSON" in err and err.count("\n") == 1
    assert not (Path(os.environ["WMPLAT_HOME"]) / "zoos" / "bad-metadata").exists()
