"""`wmplat sweep` refuses every kind of bad input before any cell runs: exit code 1, one line
on stderr that says what is wrong and what to do, and no results folder. And the zoo's way to a
worker that does not see the driver's folder: a local copy of the shipped files, written once,
written again when damaged; a cell that fails on the worker comes back as a failure, never as
an exception."""

import dataclasses
import os
import re
import shutil

import pytest
import torch

from wmplat.errors import ZooError
from wmplat.plugins import load_plugins
from wmplat.sweep.grid import parse_seeds
from wmplat.sweep.worker import FAILED, run_cell
from wmplat.sweep.zoos import CACHE_ENV, ZooSource, open_source, zoo_files, zoo_source
from wmplat.zoo.format import MANIFEST, WEIGHTS, load_zoo

# a zoo folder that does not exist: an option refused before the zoo loads is refused with it
NO_ZOO = "no-such-zoo-folder"
LARGEST_SEED = 2**32 - 1


def refused(cli, *args: str, env: dict | None = None) -> str:
    """The one line `wmplat sweep *args` fails with, without `error: `; checks that it is one
    line and that no results folder was made."""
    proc = cli("sweep", *args, "--results-dir", "R", env=env, ok=False)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert not (cli.cwd / "R").exists(), "nothing written on error"
    return lines[0].removeprefix("error: ")


# --- --seeds ---------------------------------------------------------------------------------

EXAMPLES = "e.g. 0-4, 0,3,7 or 0-2,10"


@pytest.mark.parametrize("seeds, message", [
    ("x", f"'x' is not a seed or a range; write {EXAMPLES}"),
    ("3-1", "the range '3-1' runs backwards; write 1-3"),
    ("1-", f"'1-' is not a seed or a range; write {EXAMPLES}"),
    ("-1", f"'-1' is not a seed or a range; write {EXAMPLES}"),
    ("1.5", f"'1.5' is not a seed or a range; write {EXAMPLES}"),
    ("", f"an empty seed; separate seeds by single commas, {EXAMPLES}"),
    ("0,,1", f"an empty seed; separate seeds by single commas, {EXAMPLES}"),
    (str(LARGEST_SEED + 1), f"{LARGEST_SEED + 1} is above the largest seed, {LARGEST_SEED} "
                            "(2**32 - 1)"),
    (f"{LARGEST_SEED - 2}-{LARGEST_SEED + 2}", f"{LARGEST_SEED + 2} is above the largest seed, "
                                               f"{LARGEST_SEED} (2**32 - 1)"),
    ("0-4000000000", "'0-4000000000' holds more than 100000 seeds, the most a sweep takes"),
    # each range within the limit, together over it (and found out at once, not in minutes)
    ("0-59999,60000-119999", "more than 100000 seeds, the most a sweep takes"),
])
def test_bad_seeds_are_refused_before_the_zoo_loads(cli, seeds, message):
    assert refused(cli, "--methods", "noise", "--zoos", NO_ZOO, "--seeds", seeds) == \
        f"--seeds {seeds!r}: {message}"


def test_seeds_are_taken_in_the_order_given_each_once():
    assert parse_seeds("3,0-2, 1 ,0,5-5") == [3, 0, 1, 2, 5]
    assert parse_seeds(f"{LARGEST_SEED}") == [LARGEST_SEED]


# --- --methods and --zoos --------------------------------------------------------------------

def test_an_unknown_method_is_refused_as_wmplat_evaluate_refuses_it(cli):
    evaluate = cli("evaluate", "--method", "nope", "--zoo", NO_ZOO, ok=False)
    message = refused(cli, "--methods", "noise,nope", "--zoos", NO_ZOO)
    assert f"error: {message}\n" == evaluate.stderr
    assert message.startswith("unknown method 'nope'; did you mean 'noise'? (known: ")
    assert ", copycat, " in message


@pytest.mark.parametrize("option, value, message", [
    ("--methods", "noise,,copycat", "--methods 'noise,,copycat': an empty name; separate names "
                                    "by single commas"),
    ("--methods", "", "--methods '': an empty name; separate names by single commas"),
    ("--methods", "noise,copycat,noise", "--methods 'noise,copycat,noise': 'noise' is given "
                                         "twice"),
    ("--methods", "../x", "method name '../x' given to --methods is not a valid name: use "
                          "letters, digits, '.', '_' and '-', starting with a letter or digit "
                          "(no '..', at most 100 characters)"),
    ("--zoos", "digits-mlp,,x", "--zoos 'digits-mlp,,x': an empty name; separate names by "
                                "single commas"),
    ("--zoos", "digits-mlp,digits-mlp", "--zoos 'digits-mlp,digits-mlp': 'digits-mlp' is given "
                                        "twice"),
])
def test_a_bad_list_of_names_is_refused(cli, option, value, message):
    args = {"--methods": "noise", "--zoos": NO_ZOO, option: value}
    assert refused(cli, *(a for item in args.items() for a in item)) == message


def test_an_unknown_zoo_is_refused_as_wmplat_evaluate_refuses_it(cli):
    evaluate = cli("evaluate", "--method", "noise", "--zoo", "nope", ok=False)
    message = refused(cli, "--methods", "noise", "--zoos", "nope")
    assert f"error: {message}\n" == evaluate.stderr
    assert message == "unknown zoo 'nope' (known: digits-mlp); or give the path of a zoo folder"


def test_a_zoo_given_by_name_and_by_folder_is_refused(cli, default_zoo):
    # the same zoo twice: every cell twice, into one results folder
    message = refused(cli, "--methods", "noise", "--zoos", f"digits-mlp,{default_zoo}")
    assert re.fullmatch(rf"--zoos: 'digits-mlp' and {re.escape(repr(str(default_zoo)))} are "
                        r"the same zoo \(digits-mlp at revision local-[0-9a-f]{12}\); give it "
                        r"once", message)


# --- --set -----------------------------------------------------------------------------------

@pytest.mark.parametrize("settings, message", [
    (["sigma=0.1"], "--set sigma=...: a sweep's options name their method, METHOD.KEY=VALUE "
                    "(e.g. noise.sigma=...)"),
    ([".sigma=0.1"], "--set .sigma=...: a sweep's options name their method, METHOD.KEY=VALUE "
                     "(e.g. noise.sigma=...)"),
    (["noise.=0.1"], "--set noise.=...: a sweep's options name their method, METHOD.KEY=VALUE "
                     "(e.g. noise.KEY=...)"),
    (["average.k=3"], "--set average.k=...: 'average' is not one of --methods (noise, "
                      "copycat); add it there or drop the option"),
    (["noise.nope=1"], "bad option for baseline 'noise': nope: Extra inputs are not permitted"),
    (["copycat.x=1"], "method 'copycat' takes no options, got ['x']"),
    (["noise.sigma"], "--set expects key=value, got 'noise.sigma'"),
])
def test_a_bad_option_is_refused_before_the_zoo_loads(cli, settings, message):
    args = [a for s in settings for a in ("--set", s)]
    assert refused(cli, "--methods", "noise,copycat", "--zoos", NO_ZOO, *args) == message


def test_a_key_set_twice_takes_the_later_value_as_wmplat_evaluate_does(cli):
    # docs/plugins.md: "A later `--set` of the same key wins"; the later one is what is checked
    message = refused(cli, "--methods", "noise", "--set", "noise.sigma=0.2", "--set",
                      "noise.sigma=abc", "--zoos", NO_ZOO)
    assert message.startswith("bad option for baseline 'noise': sigma: Input should be a valid "
                              "number")
    later_good = refused(cli, "--methods", "noise", "--set", "noise.sigma=abc", "--set",
                         "noise.sigma=0.2", "--zoos", NO_ZOO)
    assert later_good.startswith(f"unknown zoo {NO_ZOO!r}")     # the options passed


def test_a_bad_value_is_refused_as_wmplat_evaluate_refuses_it(cli):
    evaluate = cli("evaluate", "--method", "noise", "--set", "sigma=abc", "--zoo", NO_ZOO,
                   ok=False)
    message = refused(cli, "--methods", "noise", "--set", "noise.sigma=abc", "--zoos", NO_ZOO)
    assert f"error: {message}\n" == evaluate.stderr
    assert message.startswith("bad option for baseline 'noise': sigma: Input should be a valid "
                              "number")


# --- resources -------------------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["--workers", "0"], "--workers must be at least 1, got 0"),
    (["--workers", "-3"], "--workers must be at least 1, got -3"),
    (["--cpus-per-cell", "0"], "--cpus-per-cell must be at least 1, got 0"),
    (["--executor", "local", "--address", "127.0.0.1:6379"],
     "--address is for --executor ray (the local executor runs on this machine)"),
    (["--samples", "0"], "--samples must be at least 1, got 0"),
    (["--device", "nope"], "--device must be one of cpu, cuda, cuda:N (a GPU's index) or auto "
                           "(cuda if a GPU is visible, else cpu); got 'nope'"),
    (["--device", "cuda:x"], "--device must be one of cpu, cuda, cuda:N (a GPU's index) or "
                             "auto (cuda if a GPU is visible, else cpu); got 'cuda:x'"),
])
def test_bad_resources_are_refused_before_the_zoo_loads(cli, args, message):
    assert refused(cli, "--methods", "noise", "--zoos", NO_ZOO, *args) == message


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_on_a_machine_without_one_is_refused_for_the_local_executor(cli):
    message = refused(cli, "--methods", "noise", "--zoos", NO_ZOO, "--device", "cuda")
    assert message.startswith("--device cuda: ")
    assert message.endswith("; use --device cpu, or auto to take a GPU only where there is one")


def test_an_unknown_executor_is_refused_by_the_command_line_and_by_the_python_api(cli,
                                                                                 tmp_path):
    # a choice, checked by click as every choice of every command is: its usage error (exit 2)
    proc = cli("sweep", "--methods", "noise", "--executor", "nope", "--results-dir", "R",
               ok=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.splitlines()[-1] == ("Error: Invalid value for '--executor': 'nope' is "
                                            "not one of 'local', 'ray'.")
    assert not (cli.cwd / "R").exists()
    from wmplat.errors import ConfigError
    from wmplat.sweep.run import sweep

    with pytest.raises(ConfigError, match=r"^--executor 'nope': choose local or ray$"):
        sweep(["noise"], [NO_ZOO], [0], results_dir=tmp_path / "R", executor="nope")
    assert not (tmp_path / "R").exists()


# --- Ray not installed, and plugins the workers cannot load ----------------------------------

@pytest.fixture
def without_ray(tmp_path) -> dict[str, str]:
    """An environment in which `import ray` fails as it does where Ray is not installed."""
    folder = tmp_path / "no-ray"
    (folder / "ray").mkdir(parents=True)
    (folder / "ray" / "__init__.py").write_text(
        'raise ImportError("No module named \'ray\' (a test\'s stand-in)")\n')
    return {"PYTHONPATH": os.pathsep.join(
        [str(folder), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}


def test_the_ray_executor_without_ray_names_what_to_install(cli_process, default_zoo,
                                                            without_ray):
    message = refused(cli_process, "--methods", "copycat", "--samples", "4", "--executor",
                      "ray", env=without_ray)
    assert message == ("--executor ray needs Ray, which is not installed here: pip install "
                       "'wmplat[ray]' (or use --executor local)")


def test_the_local_executor_needs_no_ray_and_sweeps_a_seed_given_twice_once(cli_process,
                                                                            default_zoo,
                                                                            without_ray):
    proc = cli_process("sweep", "--methods", "copycat", "--seeds", "0,0", "--samples", "4",
                       "--workers", "2", "--results-dir", "R", env=without_ray)
    # the references, the 7 baselines and copycat, at seed 0 alone
    assert "sweep done: 10 cells in " in proc.stderr
    assert proc.stderr.rstrip().endswith(": 10 computed, 0 reused, 0 failed")
    rows = [p.parent.name for p in (cli_process.cwd / "R").rglob("result.json")]
    assert sorted(rows)[-2:] == ["reference", "reference"]
    assert len(rows) == 10 and all(r.endswith("-seed0-n4") for r in sorted(rows)[:-2])


def test_a_plugin_registered_in_this_process_only_is_refused_before_any_cell_runs(
        cli, use_plugin, default_zoo):
    use_plugin("wmplat-doomed")     # not installed: the workers could never load it
    message = refused(cli, "--methods", "copycat,doomed", "--samples", "4", "--workers", "1")
    assert message == ("method 'doomed' is registered in this process only "
                       "(wmplat.plugins.register); a sweep's workers load plugins from "
                       "installed packages: install it as a package (`wmplat new-plugin` "
                       "makes one)")


# --- the zoo on a worker that does not see the driver's folder -------------------------------

@pytest.fixture
def driver_zoo(default_zoo, tmp_path, monkeypatch):
    """The default zoo as a driver opened it from a folder of its own (at a revision its files
    do not give: a worker must keep the driver's), and the task to open it with."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    task = load_plugins().datasets.get("digits-mlp").cls()
    folder = shutil.copytree(default_zoo, tmp_path / "driver")
    return load_zoo(folder, task, revision="driver-revision"), task


class Shipping:
    """The zoo's files as the driver ships them, counting how often a worker fetched them."""

    def __init__(self, source: ZooSource):
        self.source, self.calls = source, 0

    def __call__(self) -> dict[str, bytes]:
        self.calls += 1
        return zoo_files(self.source)


def elsewhere(zoo, tmp_path) -> tuple[ZooSource, Shipping]:
    """The zoo's source as a worker that cannot see the driver's folder is sent it."""
    source = zoo_source(zoo)
    return dataclasses.replace(source, folder=str(tmp_path / "on-the-driver")), Shipping(source)


def test_a_worker_that_does_not_see_the_folder_loads_a_local_copy_written_once(driver_zoo,
                                                                               tmp_path):
    zoo, task = driver_zoo
    source, fetch = elsewhere(zoo, tmp_path)
    first = open_source(source, task, fetch)
    assert first.folder.parent == tmp_path / "cache"
    assert (first.revision, first.name) == ("driver-revision", "digits-mlp")
    assert torch.equal(first.train_weights(), zoo.train_weights())
    assert torch.equal(first.heldout_weights(), zoo.heldout_weights())
    again = open_source(source, task, fetch)
    assert again.folder == first.folder and fetch.calls == 1
    assert torch.equal(again.train_weights(), zoo.train_weights())


def test_a_damaged_local_copy_is_written_again(driver_zoo, tmp_path):
    zoo, task = driver_zoo
    source, fetch = elsewhere(zoo, tmp_path)
    weights = open_source(source, task, fetch).folder / WEIGHTS
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF                      # a weight's last byte: the file still parses
    weights.write_bytes(bytes(data))
    with pytest.raises(ZooError, match="sha256 does not match"):
        load_zoo(weights.parent, task)    # what the worker's load finds
    reopened = open_source(source, task, fetch)
    assert fetch.calls == 2
    assert weights.read_bytes() == (zoo.folder / WEIGHTS).read_bytes()
    assert torch.equal(reopened.train_weights(), zoo.train_weights())
    assert reopened.revision == "driver-revision"


def test_a_worker_with_no_folder_and_no_copy_says_why(driver_zoo, tmp_path):
    zoo, task = driver_zoo
    source, _ = elsewhere(zoo, tmp_path)
    with pytest.raises(ZooError) as gone:
        open_source(source, task)
    assert str(gone.value) == (
        f"zoo 'digits-mlp': its folder {source.folder} is not on this machine, and the driver "
        "shipped no copy; keep a zoo's folder unchanged while a sweep runs, and run the sweep "
        "again")
    changed = zoo_source(zoo)
    manifest = zoo.folder / MANIFEST
    manifest.write_text(manifest.read_text() + "\n")
    with pytest.raises(ZooError) as edited:
        open_source(changed, task)
    assert str(edited.value).startswith(f"zoo 'digits-mlp': its folder {changed.folder} has "
                                        "changed since the sweep began, and the driver shipped "
                                        "no copy; ")
    assert not (tmp_path / "cache").exists()


# --- a cell that fails on the worker ---------------------------------------------------------

@pytest.mark.parametrize("name, error", [
    ("crash-in-fit", "method 'crash-in-fit' (wmplat-misbehaving 0.1.0) failed: RuntimeError: "
                     "out of coffee"),
    ("nope", "unknown method 'nope'; did you mean 'noise'? (known: "),
])
def test_a_failing_cell_comes_back_as_a_failure(driver_zoo, monkeypatch, name, error):
    monkeypatch.setenv("WMPLAT_QUIET", "1")     # run_cell sets it: the test's own, undone after
    zoo, _ = driver_zoo
    spec = {"zoo": zoo_source(zoo).as_dict(), "name": name, "kind": "method", "config": {},
            "seed": 0, "n_samples": 4, "threads": 1, "device": "cpu"}
    answer = run_cell(spec, None)       # no null: the driver sends one; these fail before it
    assert answer.keys() == {"status", "error"} and answer["status"] == FAILED
    assert answer["error"].startswith(error) and "\n" not in answer["error"]


def test_a_cell_whose_zoo_folder_is_gone_comes_back_as_a_failure(driver_zoo, monkeypatch,
                                                                 tmp_path):
    monkeypatch.setenv("WMPLAT_QUIET", "1")
    zoo, _ = driver_zoo
    source, _ = elsewhere(zoo, tmp_path)
    # a revision of its own: a worker keeps the zoos it opened (by revision, not folder) open
    source = dataclasses.replace(source, revision="gone-revision")
    spec = {"zoo": source.as_dict(), "name": "copycat", "kind": "method", "config": {},
            "seed": 0, "n_samples": 4, "threads": 1, "device": "cpu"}
    answer = run_cell(spec, None)
    assert answer["status"] == FAILED
    assert answer["error"].startswith(f"zoo 'digits-mlp': its folder {source.folder} is not on "
                                      "this machine")
