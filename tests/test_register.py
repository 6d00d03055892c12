"""Plugins registered in process (wmplat.plugins.register) load through the same hooks as entry
points, and WMPLAT_LOAD_PLUGINS limits which entry points load."""

import warnings

import pytest
import torch

import wmplat
from wmplat.evaluation.runner import evaluate
from wmplat.plugins import (
    IN_PROCESS,
    LOAD_ENV,
    PluginWarning,
    load_plugins,
    register,
    registered,
    unregister,
)


class Zeros(wmplat.Baseline):
    name = "zeros-in-process"

    def sample(self, n, seed):
        return torch.zeros(n, self.train_weights.shape[1])


class ZerosPlugin:
    @staticmethod
    @wmplat.hookimpl
    def register_baselines(register):
        register(Zeros)


def test_a_registered_plugin_is_loaded_and_unregistering_removes_it():
    assert "zeros-in-process" not in load_plugins().generators.names()
    with registered(ZerosPlugin) as names:
        entry = load_plugins().generators.get("zeros-in-process")
        assert (entry.cls, entry.kind, entry.provider.package) == (Zeros, "baseline", IN_PROCESS)
        assert names == ["ZerosPlugin"]
    assert "zeros-in-process" not in load_plugins().generators.names()


def test_registering_one_name_twice_is_refused():
    register(ZerosPlugin)
    try:
        with pytest.raises(wmplat.PluginError, match="already registered in this process"):
            register(ZerosPlugin)
    finally:
        unregister("ZerosPlugin")


def entry_point_plugins() -> set[str]:
    return {s.plugin for s in load_plugins().statuses if s.package not in ("wmplat", IN_PROCESS)}


@pytest.fixture
def load_only(monkeypatch):
    """load_only(value): WMPLAT_LOAD_PLUGINS=value (None: unset) for the next load_plugins()."""
    def set_to(value):
        if value is None:
            monkeypatch.delenv(LOAD_ENV, raising=False)
        else:
            monkeypatch.setenv(LOAD_ENV, value)
        load_plugins.cache_clear()

    yield set_to
    load_plugins.cache_clear()


def test_unset_every_entry_point_loads(load_only):
    load_only(None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginWarning)  # other plugins this environment holds
        assert {"copycat", "misbehaving"} <= entry_point_plugins()


def test_empty_no_entry_point_loads_but_built_ins_and_registered_plugins_do(load_only):
    load_only("")
    with registered(ZerosPlugin):
        assert entry_point_plugins() == set()
        names = load_plugins().generators.names()
        assert {"zeros-in-process", "noise", "replica"} <= set(names)
        assert "copycat" not in names


def test_one_name_loads_that_entry_point_only(load_only):
    load_only(" misbehaving ")
    assert entry_point_plugins() == {"misbehaving"}
    assert "crash-in-fit" in load_plugins().generators.names()
    assert "copycat" not in load_plugins().generators.names()


def test_a_name_no_package_provides_is_a_failed_plugin_listed_and_warned_about(load_only, cli):
    load_only("copycat,nope")
    with pytest.warns(PluginWarning, match="plugin 'nope': WMPLAT_LOAD_PLUGINS names it, but no "
                                           "installed package has an entry point of that name"):
        plugins = load_plugins()
    assert [s.plugin for s in plugins.failures()] == ["nope"]
    assert "copycat" in plugins.generators.names()
    rows = cli.json("plugins", "--json")
    [nope] = [r for r in rows if r["kind"] == "plugin"]
    assert nope["name"] == "nope" and nope["status"].startswith(
        "error: WMPLAT_LOAD_PLUGINS names it, but no installed package")
    assert "installed: " in nope["status"] and "copycat" in nope["status"]
    strict = cli("plugins", env={"WMPLAT_STRICT_PLUGINS": "1"}, ok=False)
    assert strict.returncode == 1 and "plugin 'nope'" in strict.stderr
    assert "WMPLAT_STRICT_PLUGINS" in strict.stderr


def test_a_registered_plugin_is_evaluated_by_the_runner_and_by_the_cli(cli, default_zoo):
    with registered(ZerosPlugin):
        rows = evaluate("zeros-in-process", n_samples=4, results_dir=cli.cwd / "wmplat-results")
        assert (rows[0].method, rows[0].kind) == ("zeros-in-process", "baseline")
        assert rows[0].metrics.accuracy_mean < 0.2      # the zeros were scored: one class
        listed = {r["name"]: r for r in cli.json("plugins", "--json")}
        assert listed["zeros-in-process"]["package"] == IN_PROCESS
        proc = cli("evaluate", "--method", "zeros-in-process", "--samples", "4")
        assert any(line.startswith("zeros-in-process ") for line in proc.stdout.splitlines())
        assert proc.stderr.splitlines()[1].startswith("  reusing ")    # the runner's row
    proc = cli("evaluate", "--method", "zeros-in-process", "--samples", "4", ok=False)
    assert proc.returncode == 1 and "unknown method 'zeros-in-process'" in proc.stderr


class NeverHere(wmplat.Metric):
    """Applies to no task: the runner must never call `compute`."""

    name = "never-here"
    per_sample = ("never_here",)
    summary = ("never_here_median",)

    @classmethod
    def applies_to(cls, task):
        return False

    def compute(self, ctx):
        raise AssertionError("compute of a metric that does not apply was called")


class NeverHerePlugin:
    @staticmethod
    @wmplat.hookimpl
    def register_metrics(register):
        register(NeverHere)


def test_a_metric_that_does_not_apply_is_skipped_with_nulls_and_rows_are_reused(
        default_zoo, tmp_path):
    from wmplat.evaluation.store import read_per_sample

    with registered(NeverHerePlugin):
        rows = evaluate("replica", n_samples=4, results_dir=tmp_path)
        assert rows[0].metrics.model_extra["never_here_median"] is None
        assert rows[0].metrics.model_extra["error_consistency_median"] is not None
        folders = list(tmp_path.rglob("per_sample.safetensors"))
        assert folders and all("never_here" not in read_per_sample(f.parent) for f in folders)
        again = evaluate("replica", n_samples=4, results_dir=tmp_path)
        assert [r.created_at for r in again] == [r.created_at for r in rows]   # reused
