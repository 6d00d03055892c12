"""Zoos pulled from and results pushed to the Hub, through the real CLI and the real
huggingface_hub client, talking HTTP to the test Hub on 127.0.0.1 (tests/hub_server.py)."""

import json
import os
import shutil

import pytest
import yaml

ZOO_REPO = "wmplat-tester/digits-zoo"
RESULTS_REPO = "wmplat-tester/results"


@pytest.fixture
def cli(cli_process):
    """These commands talk to the test Hub as real processes: the Hugging Face clients read
    their settings (endpoint, cache, token, offline) once, at import, and each test has its own."""
    return cli_process


def write_registry(path, revision, repo=ZOO_REPO, name="hub-digits", task="digits-mlp"):
    path.write_text(yaml.safe_dump({"schema_version": 1, "zoos": {name: {
        "source": "hub", "repo_id": repo, "repo_type": "dataset", "revision": revision,
        "task": task, "description": "the default zoo, pushed to the test hub"}}}))
    return path


@pytest.fixture
def pushed_zoo(cli, hub, default_zoo, tmp_path):
    """The default zoo pushed to the test hub, and a registry file pinning that commit."""
    out = cli("zoo", "push", "digits-mlp", "--repo", ZOO_REPO).stdout
    commit = hub.head(ZOO_REPO)
    assert f"revision: {commit}" in out
    return commit, write_registry(tmp_path / "zoos.yaml", commit)


def cache_snapshots(hub):
    folder = hub.home / "hub" / f"datasets--{ZOO_REPO.replace('/', '--')}" / "snapshots"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


# --- pushing and pulling zoos ---------------------------------------------------------------

def test_a_pushed_zoo_has_the_files_of_the_local_zoo_and_a_card(pushed_zoo, hub, default_zoo):
    files = hub.files(ZOO_REPO)
    for name in ("manifest.json", "weights.safetensors"):
        assert files[name] == (default_zoo / name).read_bytes()
    assert hub.is_lfs(ZOO_REPO, "weights.safetensors")
    card = files["README.md"].decode()
    metadata = yaml.safe_load(card.split("---")[1])
    assert metadata["license"] == "cc-by-4.0"
    assert "wmplat" in metadata["tags"] and "digits-mlp" in metadata["tags"]
    assert metadata["wmplat"] == {"zoo": "digits-mlp", "task": "digits-mlp",
                                  "architecture": "mlp 64-32-10 relu (2,410 parameters)",
                                  "num_params": 2410, "models": {"train": 320, "heldout": 160},
                                  "schema_version": 1}
    for fact in ("mlp 64-32-10", "2,410 parameters", "| train | 320 | 64 |", "wmplat evaluate"):
        assert fact in card


def test_pull_downloads_the_pinned_commit_and_evaluations_record_it(cli, pushed_zoo, hub):
    commit, registry = pushed_zoo
    out = cli("--registry", str(registry), "zoo", "pull", "hub-digits").stdout
    assert f"revision {commit}" in out
    assert cache_snapshots(hub) == [commit]
    listed = cli("--registry", str(registry), "zoo", "list").stdout
    assert "hub-digits" in listed and "(hub: dataset" in listed and "; cached)" in listed
    cli("--registry", str(registry), "evaluate", "--method", "replica", "--zoo", "hub-digits",
        "--samples", "4")
    rows = cli.json("leaderboard", "--format", "json")
    assert {r["zoo_revision"] for r in rows} == {commit}
    assert {r["zoo"] for r in rows} == {"digits-mlp"}   # the manifest's name


def test_the_pin_holds_when_the_repo_moves_on(cli, pushed_zoo, hub, default_zoo):
    commit, registry = pushed_zoo
    manifest = json.loads((default_zoo / "manifest.json").read_text())
    manifest["license"] = "MIT"
    newer = hub.commit(ZOO_REPO, {"manifest.json": json.dumps(manifest)})
    pull = ("--registry", str(registry), "zoo", "pull", "hub-digits")
    assert f"revision {commit}" in cli(*pull).stdout
    # --revision overrides the pin; a branch resolves to the commit it points at
    assert f"revision {newer}" in cli(*pull, "--revision", "main").stdout
    assert cache_snapshots(hub) == sorted([commit, newer])


def test_a_tampered_file_is_rejected_and_not_kept_in_the_cache(cli, pushed_zoo, hub):
    commit, registry = pushed_zoo
    weights = bytearray(hub.read(ZOO_REPO, "weights.safetensors"))
    weights[-1] ^= 0xFF
    hub.tamper(ZOO_REPO, "weights.safetensors", bytes(weights))
    proc = cli("--registry", str(registry), "zoo", "pull", "hub-digits", ok=False)
    assert proc.returncode == 1
    assert "weights.safetensors" in proc.stderr and "sha256" in proc.stderr
    assert "removed from the cache" in proc.stderr
    assert cache_snapshots(hub) == []
    # and nothing half-valid is left behind for the next attempt to trust
    proc = cli("--registry", str(registry), "evaluate", "--method", "replica", "--zoo",
               "hub-digits", ok=False)
    assert proc.returncode == 1 and "sha256" in proc.stderr


def test_a_zoo_of_another_task_is_reported_and_kept_in_the_cache(cli, hub, default_zoo, tmp_path):
    manifest = json.loads((default_zoo / "manifest.json").read_text())
    manifest["task"] = "cifar-cnn"      # whole and valid, but not the task the registry names
    commit = hub.create_repo(ZOO_REPO, {
        "manifest.json": json.dumps(manifest),
        "weights.safetensors": (default_zoo / "weights.safetensors").read_bytes()})
    registry = write_registry(tmp_path / "zoos.yaml", commit)
    for env in ({}, {"HF_HUB_OFFLINE": "1"}):
        proc = cli("--registry", str(registry), "zoo", "pull", "hub-digits", env=env, ok=False)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr
        assert "task is 'cifar-cnn', expected 'digits-mlp'" in proc.stderr
        assert "removed" not in proc.stderr
        assert cache_snapshots(hub) == [commit], "a whole copy is never deleted"


def test_a_repo_that_is_not_a_zoo_is_named(cli, hub, tmp_path):
    commit = hub.create_repo(ZOO_REPO, {"README.md": "# just a card\n", "data.csv": "a,b\n"})
    registry = write_registry(tmp_path / "zoos.yaml", commit)
    proc = cli("--registry", str(registry), "zoo", "pull", "hub-digits", ok=False)
    assert proc.returncode == 1
    assert ZOO_REPO in proc.stderr and "no manifest.json" in proc.stderr


def test_a_file_missing_from_the_repo_is_named(cli, hub, default_zoo, tmp_path):
    commit = hub.create_repo(ZOO_REPO, {"manifest.json": (default_zoo / "manifest.json")
                                        .read_bytes()})
    registry = write_registry(tmp_path / "zoos.yaml", commit)
    proc = cli("--registry", str(registry), "zoo", "pull", "hub-digits", ok=False)
    assert proc.returncode == 1
    assert "weights.safetensors" in proc.stderr and "missing" in proc.stderr


def test_an_unknown_revision_is_named(cli, pushed_zoo):
    _, registry = pushed_zoo
    proc = cli("--registry", str(registry), "zoo", "pull", "hub-digits", "--revision", "v9",
               ok=False)
    assert proc.returncode == 1 and "no such revision" in proc.stderr


def test_a_registry_file_in_the_environment_extends_the_built_in_one(cli, tmp_path):
    registry = write_registry(tmp_path / "zoos.yaml", "a" * 40)
    listed = cli("zoo", "list", env={"WMPLAT_REGISTRY": str(registry)}).stdout
    assert "digits-mlp" in listed
    assert f"hub-digits  (hub: dataset {ZOO_REPO} at aaaaaaaaaaaa; not cached)" in listed


def test_a_registry_that_pins_a_branch_is_refused(cli, tmp_path):
    registry = write_registry(tmp_path / "zoos.yaml", "main")
    proc = cli("--registry", str(registry), "zoo", "list", ok=False)
    assert proc.returncode == 1
    assert "zoos.yaml" in proc.stderr and "40-hex commit" in proc.stderr


def test_offline_a_cached_zoo_loads_and_an_uncached_one_says_how_to_get_it(
        cli, pushed_zoo, hub, tmp_path):
    _, registry = pushed_zoo
    cli("--registry", str(registry), "zoo", "pull", "hub-digits")
    before = len(hub.requests)
    offline = {"HF_HUB_OFFLINE": "1"}
    info = cli("--registry", str(registry), "zoo", "info", "hub-digits", env=offline).stdout
    assert "320 models from 64 runs" in info
    assert len(hub.requests) == before      # a pinned, cached commit needs no request
    empty_cache = {**offline, "HF_HOME": str(tmp_path / "empty"),
                   "HF_HUB_CACHE": str(tmp_path / "empty" / "hub")}
    proc = cli("--registry", str(registry), "zoo", "info", "hub-digits", env=empty_cache,
               ok=False)
    assert proc.returncode == 1
    assert "not in the Hugging Face cache" in proc.stderr
    assert "wmplat zoo pull hub-digits" in proc.stderr


def test_without_a_reachable_hub_an_uncached_zoo_is_a_clear_error(cli, pushed_zoo, tmp_path):
    _, registry = pushed_zoo
    unreachable = {"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": str(tmp_path / "empty"),
                   "HF_HUB_CACHE": str(tmp_path / "empty" / "hub")}
    proc = cli("--registry", str(registry), "zoo", "pull", "hub-digits", env=unreachable,
               ok=False)
    assert proc.returncode == 1
    assert "hub-digits" in proc.stderr and "cannot be reached" in proc.stderr


def test_revision_is_refused_for_a_local_zoo(cli):
    proc = cli("evaluate", "--method", "replica", "--revision", "main", ok=False)
    assert proc.returncode == 1 and "--revision" in proc.stderr and "locally" in proc.stderr


# --- pushing results --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def results_dirs(tmp_path_factory, default_zoo):
    """Two results folders of the default zoo: replica with every baseline and reference, and
    someone else's: a single result, noise at a sigma the task does not run."""
    from conftest import Cli

    first = tmp_path_factory.mktemp("results-a") / "wmplat-results"
    Cli(first.parent)("evaluate", "--method", "replica", "--samples", "8")
    second = tmp_path_factory.mktemp("results-b") / "wmplat-results"
    shutil.copytree(first, second)           # baselines and references are reused, not rerun
    Cli(second.parent)("evaluate", "--method", "noise", "--set", "sigma=0.05", "--samples", "8")
    for result in first.rglob("result.json"):
        shutil.rmtree(second / result.parent.relative_to(first))
    return first, second


def load_table(hub, revision):
    import datasets

    return datasets.load_dataset(RESULTS_REPO, split="train", revision=revision,
                                 cache_dir=str(hub.home / "datasets"))


def test_pushed_results_load_with_datasets(cli, hub, results_dirs):
    first, _ = results_dirs
    out = cli("leaderboard", "push", "--repo", RESULTS_REPO, "--results-dir", str(first)).stdout
    rows = cli.json("leaderboard", "--format", "json", "--results-dir", str(first))
    assert f"pushed {len(rows)} results" in out
    table = load_table(hub, hub.head(RESULTS_REPO))
    assert len(table) == len(rows)
    assert sorted(table["method"]) == sorted(r["method"] for r in rows)
    by_method = {r["method"]: r for r in table}
    assert by_method["replica"]["replica_rate"] == 1.0
    assert by_method["fresh"]["kind"] == "reference" and by_method["fresh"]["seed"] is None
    files = hub.files(RESULTS_REPO)
    results = [p for p in files if p.startswith("results/")]
    assert len(results) == len(rows)
    for path in results:                       # each file is a row of the result schema
        assert json.loads(files[path])["schema_version"] == 1
    card = files["README.md"].decode()
    assert "| replica |" in card and "data/results.parquet" in card


def test_pushes_merge_and_the_same_result_is_one_row(cli, hub, results_dirs):
    first, second = results_dirs
    push = ("leaderboard", "push", "--repo", RESULTS_REPO, "--results-dir")
    cli(*push, str(first))
    after_first = hub.head(RESULTS_REPO)
    # someone else pushes their result (noise at sigma 0.05): one commit on top of ours
    cli(*push, str(second))
    assert hub.commits(RESULTS_REPO)[1] == after_first
    merged = hub.files(RESULTS_REPO)
    # pushing ours again changes nothing: the same results land on the same paths
    cli(*push, str(first))
    assert hub.files(RESULTS_REPO) == merged
    table = load_table(hub, hub.head(RESULTS_REPO))
    first_rows = cli.json("leaderboard", "--format", "json", "--results-dir", str(first))
    assert len(table) == len(first_rows) + 1
    sigmas = [json.loads(c)["sigma"] for c, m in zip(table["config"], table["method"],
                                                     strict=True) if m == "noise"]
    assert sorted(sigmas) == [0.01, 0.05, 0.1]


def test_figures_stored_with_rows_stay_local(cli, hub, results_dirs, tmp_path):
    import wmplat
    from wmplat.evaluation.plugin_figures import RowFigure, write_figures

    first = tmp_path / "wmplat-results"
    shutil.copytree(results_dirs[0], first)
    [row] = first.rglob("replica/*/result.json")
    png = b"\x89PNG\r\n\x1a\n" + bytes(8)
    write_figures(row.parent, [RowFigure(wmplat.Figure("grid", "a grid", png), "metric", "g")])
    cli("leaderboard", "push", "--repo", RESULTS_REPO, "--results-dir", str(first))
    files = hub.files(RESULTS_REPO)
    assert not [p for p in files if "figure" in p]
    rows = cli.json("leaderboard", "--format", "json", "--results-dir", str(first))
    assert len([p for p in files if p.startswith("results/")]) == len(rows)


def test_evaluate_pushes_when_asked(cli, hub, results_dirs):
    first, _ = results_dirs
    out = cli("evaluate", "--method", "replica", "--samples", "8", "--results-dir", str(first),
              "--push-to", RESULTS_REPO).stdout
    assert "pushed" in out and RESULTS_REPO in out
    assert any(p.startswith("results/") for p in hub.files(RESULTS_REPO))


def test_a_push_without_a_token_fails_before_evaluating(cli, hub, tmp_path):
    env = {"HF_TOKEN": "", "HF_HOME": str(tmp_path / "no-login")}
    proc = cli("evaluate", "--method", "replica", "--push-to", RESULTS_REPO, env=env, ok=False)
    assert proc.returncode == 1 and "token" in proc.stderr
    assert not (cli.cwd / "wmplat-results").exists()      # nothing was evaluated
    assert hub.repo_ids() == []


def test_a_rejected_token_is_named(cli, hub, results_dirs):
    first, _ = results_dirs
    proc = cli("leaderboard", "push", "--repo", RESULTS_REPO, "--results-dir", str(first),
               env={"HF_TOKEN": "hf_not_a_token"}, ok=False)
    assert proc.returncode == 1 and "rejected the token" in proc.stderr
    assert hub.repo_ids() == []


@pytest.mark.parametrize("repo", ["no-owner", "a/b/c", "owner/bad name"])
def test_a_bad_repo_id_is_named_before_anything_runs(cli, hub, repo):
    proc = cli("evaluate", "--method", "replica", "--push-to", repo, ok=False)
    assert proc.returncode == 1 and repr(repo) in proc.stderr
    assert not (cli.cwd / "wmplat-results").exists()


def test_a_foreign_file_in_the_results_folder_stops_the_push(cli, hub, results_dirs):
    first, _ = results_dirs
    hub.create_repo(RESULTS_REPO, {"results/x/y/z.json": '{"not": "a result"}'})
    head = hub.head(RESULTS_REPO)
    proc = cli("leaderboard", "push", "--repo", RESULTS_REPO, "--results-dir", str(first),
               ok=False)
    assert proc.returncode == 1 and "results/x/y/z.json" in proc.stderr
    assert hub.head(RESULTS_REPO) == head


# --- the real Hub ---------------------------------------------------------------------------

@pytest.mark.network
@pytest.mark.skipif(not (os.environ.get("WMPLAT_TEST_HUB_REPO")
                         and os.environ.get("WMPLAT_TEST_HUB_TOKEN")),
                    reason="set WMPLAT_TEST_HUB_REPO=OWNER/NAME and WMPLAT_TEST_HUB_TOKEN (a "
                           "write token) to push there")
def test_the_real_hub_round_trip(tmp_path, default_zoo):
    """Against huggingface.co: push the default zoo to a scratch repo, pull it at the commit."""
    import subprocess

    from conftest import WMPLAT

    repo = os.environ["WMPLAT_TEST_HUB_REPO"]
    # the test hub's settings (endpoint, token, cache, guard) replaced by the real Hub's
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HF_", "WMPLAT_NETGUARD"))}
    env.update(HF_HOME=str(tmp_path / "hf"), HF_TOKEN=os.environ["WMPLAT_TEST_HUB_TOKEN"])
    run = [WMPLAT]
    out = subprocess.run([*run, "zoo", "push", "digits-mlp", "--repo", repo], env=env,
                         check=True, capture_output=True, text=True).stdout
    commit = out.split("revision: ")[1].split()[0]
    registry = write_registry(tmp_path / "zoos.yaml", commit, repo=repo)
    out = subprocess.run([*run, "--registry", str(registry), "zoo", "pull", "hub-digits"],
                         env=env, check=True, capture_output=True, text=True).stdout
    assert commit in out
