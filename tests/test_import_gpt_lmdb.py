"""`wmplat zoo import --format gpt-lmdb` on a small data set written here in G.pt's layout
(data_gen/train_mnist.py): one LMDB folder per run named by its seed, a fused folder of two
runs, keys `{run}/ep{EEE}_it{IIIII}.pt` holding the state dict's float32 bytes and `_arch` its
element counts (as float32, as G.pt's Database stores them), runs.json with the four losses
(errors in percent) and DONE.txt; a run still being written has no DONE.txt."""

import json
import shutil
import sys

import lmdb
import numpy as np
import pytest
import test_zoo_import
import torch
import yaml
from test_file_zoo import digits_file_task
from torch import nn

from wmplat.tasks.digits_mlp import DigitsMLP
from wmplat.zoo.format import load_zoo

# (epoch, iteration within the epoch, counted from 1): the initialisation, two random
# iterations and the last, with 5 iterations per epoch: steps 0, 3, 7 and 10
POSITIONS = ((0, 0), (0, 3), (1, 2), (1, 5))
STEPS = (0, 3, 7, 10)
FOLDERS = ("000000", "000001", "000002", "000003_000004")
RUNS = range(5)


# this module's own $WMPLAT_HOME, autouse: its imported zoos are listed by no other test
import_home = test_zoo_import.import_home


def gpt_run(run: int, x: torch.Tensor, y: torch.Tensor):
    """G.pt's run `run`: (key, state dict, losses) of each saved checkpoint, the weights moving
    a little between checkpoints as training would move them."""
    torch.manual_seed(run)
    net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    saved = []
    for epoch, iteration in POSITIONS:
        with torch.no_grad():
            if saved:
                for p in net.parameters():
                    p.add_(0.05 * torch.randn_like(p))
            logits = net(x)
            err = 100 * float((logits.argmax(1) != y).float().mean())
            losses = {"avg_test_loss": float(nn.functional.cross_entropy(logits, y)),
                      "avg_test_err": err, "avg_train_loss": 2.5 - 0.1 * len(saved),
                      "avg_train_err": 90.0 - len(saved)}
        key = f"{run:06d}/ep{epoch:03d}_it{iteration:05d}.pt"
        saved.append((key, {k: v.clone() for k, v in net.state_dict().items()}, losses))
    return saved


def write_lmdb(folder, entries: dict[str, bytes]) -> None:
    env = lmdb.open(str(folder), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for key, value in entries.items():
            txn.put(key.encode(), value)
    env.close()
    (folder / "lock.mdb").unlink()      # the import must not need one


def write_gpt_dataset(root):
    """The data set under `root` (runs 0-4 finished, run 5 being written), and {(run, step):
    (state dict, losses)}."""
    x, y = DigitsMLP().test_data()
    written = {}
    for name in (*FOLDERS, "000005"):
        folder = root / name
        folder.mkdir()
        entries, runs = {}, {}
        for run in (int(r) for r in name.split("_")):
            checkpoints = {}
            for (key, state, losses), step in zip(gpt_run(run, x, y), STEPS, strict=True):
                entries[key] = torch.cat([v.flatten() for v in state.values()]).numpy().tobytes()
                entries[key + "_arch"] = np.array([v.numel() for v in state.values()],
                                                  dtype=np.float32).tobytes()
                checkpoints[key] = losses
                written[run, step] = state, losses
            runs[f"{run:06d}"] = {"checkpoints": checkpoints, "metadata": {"avg_test_loss": []}}
        write_lmdb(folder, entries)
        if name == "000005":
            continue           # still being written: no runs.json, no DONE.txt
        single = "_" not in name
        (folder / "runs.json").write_text(json.dumps(runs[name] if single else runs, indent=2,
                                                     sort_keys=True))
        (folder / "DONE.txt").touch()
    return written


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    root = tmp_path_factory.mktemp("gpt-mnist")
    return root, write_gpt_dataset(root), digits_file_task(tmp_path_factory.mktemp("task")).path


def gpt_import(cli, src, task, name, *extra, ok=True):
    return cli("zoo", "import", str(src), "--format", "gpt-lmdb", "--task", str(task),
               "--name", name, *extra, ok=ok)


def contents(root) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*")
            if p.is_file()}


def test_runs_come_back_with_their_steps_seeds_losses_and_exact_weights(source, cli,
                                                                        import_home):
    root, written, task = source
    before = contents(root)
    proc = gpt_import(cli, root, task, "gpt-digits", "--heldout-runs", "3,4")
    assert (f"warning: {root / '000005'}: no DONE.txt, skipped (a run still being written?)"
            in proc.stderr.splitlines())
    assert "0 beyond one test example" in proc.stderr
    assert contents(root) == before              # read-only: no lock.mdb, nothing changed
    zoo = load_zoo(import_home / "zoos" / "gpt-digits")
    assert sorted((m.run, m.step) for m in zoo.manifest.models) == sorted(
        (run, step) for run, step in written if run in RUNS)
    for split in ("train", "heldout"):
        models = getattr(zoo, f"{split}_models")()
        params = zoo.unflatten(getattr(zoo, f"{split}_weights")())
        assert {m.run for m in models} == ({0, 1, 2} if split == "train" else {3, 4})
        for i, m in enumerate(models):
            state, losses = written[m.run, m.step]
            assert m.seed == m.run and m.metadata == losses
            assert m.quality == pytest.approx(1 - losses["avg_test_err"] / 100, abs=1e-6)
            for name, value in state.items():
                assert torch.equal(params[name][i], value)
    provenance = zoo.manifest.provenance
    assert provenance["format"] == "gpt-lmdb" and provenance["dropped_runs"] == []
    assert provenance["quality_check"]["compared"] == 20


def test_the_runs_gpt_would_delete_are_left_out_and_named(source, cli, import_home, tmp_path):
    root, _, task = source
    src = tmp_path / "src"
    shutil.copytree(root, src)
    for run, value in ((1, 10.5), (2, float("nan"))):
        key = f"{run:06d}/ep001_it00002.pt"
        env = lmdb.open(str(src / f"{run:06d}"))
        with env.begin(write=True) as txn:
            flat = np.frombuffer(txn.get(key.encode()), dtype=np.float32).copy()
            flat[7] = value
            txn.put(key.encode(), flat.tobytes())
        env.close()
    proc = gpt_import(cli, src, task, "gpt-dropped", "--heldout-runs", "4")
    for run in ("000001", "000002"):
        assert (f"warning: {src / run}: run {run} has weights beyond |w| <= 10 or NaN or inf, "
                "left out as G.pt's prepare_checkpoints.py leaves it out"
                in proc.stderr.splitlines())
    zoo = load_zoo(import_home / "zoos" / "gpt-dropped")
    assert {m.run for m in zoo.manifest.models} == {0, 3, 4}
    assert zoo.manifest.provenance["dropped_runs"] == ["000001", "000002"]


def edit_runs_json(folder, edit) -> None:
    path = folder / "runs.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def put(folder, key: str, value: bytes) -> None:
    env = lmdb.open(str(folder))
    with env.begin(write=True) as txn:
        txn.put(key.encode(), value)
    env.close()


def other_task(folder):
    """A task file whose hidden layer has 16 units, beside the digits data."""
    path = folder / "digits16.yaml"
    path.write_text(yaml.safe_dump({
        "schema_version": 1, "name": "digits16", "kind": "classifier",
        "architecture": {"sequential": [{"Linear": [64, 16]}, {"ReLU": []},
                                        {"Linear": [16, 10]}]},
        "input_shape": [64], "data": {"file": "digits-test.safetensors"}}))
    return path


KEY = "000001/ep001_it00002.pt"
BAD = {
    "no runs.json": (
        lambda src: (src / "000001" / "runs.json").unlink(),
        "{src}/000001/runs.json: missing; a finished G.pt run folder holds runs.json with the "
        "losses of its checkpoints"),
    "a checkpoint runs.json does not list": (
        lambda src: edit_runs_json(src / "000001", lambda d: d["checkpoints"].pop(KEY)),
        f"{{src}}/000001: its LMDB holds '{KEY}', which runs.json does not list (2 unlisted); "
        "its losses are unknown"),
    "a checkpoint the LMDB lacks": (
        lambda src: edit_runs_json(src / "000001", lambda d: d["checkpoints"].update(
            {"000001/ep002_it00001.pt": d["checkpoints"][KEY]})),
        "{src}/000001: runs.json lists '000001/ep002_it00001.pt', which its LMDB lacks (2 "
        "missing); the run folder is incomplete"),
    "a loss missing": (
        lambda src: edit_runs_json(src / "000001",
                                   lambda d: d["checkpoints"][KEY].pop("avg_test_err")),
        f"{{src}}/000001/runs.json: checkpoint '{KEY}' has no number avg_test_err (it needs "
        "avg_train_loss, avg_train_err, avg_test_loss, avg_test_err)"),
    "an infinite loss": (
        lambda src: edit_runs_json(src / "000001", lambda d: d["checkpoints"][KEY].update(
            avg_test_loss=float("inf"))),
        f"{{src}}/000001/runs.json: checkpoint '{KEY}' records avg_test_loss inf; a zoo "
        "records finite values only"),
    "a key of another run": (
        lambda src: edit_runs_json(src / "000001", lambda d: d["checkpoints"].update(
            {"000002/ep001_it00001.pt": d["checkpoints"][KEY]})),
        "{src}/000001/runs.json: checkpoint key '000002/ep001_it00001.pt' is not "
        "000001/ep<EEE>_it<IIIII>.pt"),
    "a fused folder without one of its runs": (
        lambda src: edit_runs_json(src / "000003_000004", lambda d: d.pop("000004")),
        "{src}/000003_000004/runs.json: no checkpoints of run 000004 (expected {{\"checkpoints\": "
        "{{key: losses}}}}, or that under the run's name)"),
    "a run in two folders": (
        lambda src: shutil.copytree(src / "000001", src / "000001_000007"),
        "{src}/000001_000007: run 000001 is also in {src}/000001; keep one copy"),
    "a truncated checkpoint": (
        lambda src: put(src / "000001", KEY, bytes(4 * 2409)),
        f"{{src}}/000001: {KEY} holds 9636 bytes, its element counts add up to 2410 float32 "
        "values (9640 bytes); the LMDB is truncated or holds something else"),
    "counts that are not counts": (
        lambda src: put(src / "000001", KEY + "_arch",
                        np.array([2048, 32, 320, 10], dtype=np.int64).tobytes()),
        f"{{src}}/000001: {KEY}_arch does not hold element counts (float32 whole numbers, as "
        "G.pt stores them)"),
    "no finished run": (
        lambda src: [p.unlink() for p in src.glob("*/DONE.txt")],
        "{src}: no finished run folder (a folder holding an LMDB, runs.json and DONE.txt); is "
        "it a G.pt checkpoint data set such as checkpoint_datasets/mnist?"),
    "an empty folder": (
        lambda src: [shutil.rmtree(p) for p in list(src.iterdir())],
        "{src}: no finished run folder (a folder holding an LMDB, runs.json and DONE.txt); is "
        "it a G.pt checkpoint data set such as checkpoint_datasets/mnist?"),
    "an LMDB lmdb cannot read": (
        lambda src: (src / "000002" / "data.mdb").write_bytes(b"not an lmdb" * 1000),
        "{src}/000002: cannot open its LMDB read-only ({src}/000002: MDB_INVALID: File is not "
        "an LMDB file)"),
    "a folder that is not an LMDB": (
        lambda src: (src / "000002" / "data.mdb").unlink(),
        "{src}/000002: no data.mdb; a G.pt run folder is an LMDB"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_data_set_is_one_line_and_writes_nothing(case, source, cli, import_home,
                                                       tmp_path):
    root, _, task = source
    src = tmp_path / "src"
    shutil.copytree(root, src)
    damage, message = BAD[case]
    damage(src)
    proc = gpt_import(cli, src, task, "gpt-bad", "--heldout-runs", "4", ok=False)
    errors = [line for line in proc.stderr.splitlines() if not line.startswith("warning: ")]
    assert errors == ["error: " + message.format(src=src)]
    assert not (import_home / "zoos" / "gpt-bad").exists()


def test_a_task_of_other_shapes_is_named_with_the_counts(source, cli, import_home):
    root, _, task = source
    proc = gpt_import(cli, root, other_task(task.parent), "gpt-bad", "--heldout-runs", "4",
                      ok=False)
    assert proc.stderr.splitlines()[-1] == (
        f"error: {root / '000000'}: 000000/ep000_it00000.pt_arch gives element counts "
        "[2048, 32, 320, 10], the task's state dict has [1024, 16, 160, 10] (0.weight [16, 64], "
        "0.bias [16], 2.weight [10, 16], 2.bias [10]); fix the task file's architecture")


def test_without_the_lmdb_package_it_says_which_extra_to_install(source, cli, monkeypatch):
    root, _, task = source
    monkeypatch.setitem(sys.modules, "lmdb", None)        # `import lmdb` fails
    proc = gpt_import(cli, root, task, "gpt-bad", "--heldout-runs", "4", ok=False)
    assert proc.stderr.splitlines() == [
        "error: --format gpt-lmdb needs the lmdb package: pip install 'wmplat[lmdb]'"]


def test_the_help_lists_the_format_and_options_of_other_formats_are_refused(source, cli):
    assert "gpt-lmdb" in cli("zoo", "import", "--help").stdout
    root, _, task = source
    proc = gpt_import(cli, root, task, "gpt-bad", "--heldout-runs", "4", "--rename", "a=b",
                      ok=False)
    assert proc.stderr.splitlines() == [
        "error: --rename is not for --format gpt-lmdb: each checkpoint's _arch counts cut it "
        "into the task's state dict, in order"]
