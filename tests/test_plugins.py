"""Plugin discovery through real entry points: built-ins and third-party packages alike. The
packages are pip-installed (by tox, or into a folder by install_plugin); the commands run in
process, but the first, which runs as a process of its own, as a user's would."""

BUILTINS = {"noise": "baseline", "average": "baseline", "gaussian": "baseline",
            "replica": "baseline", "digits-mlp": "dataset", "accuracy": "metric",
            "max_similarity": "metric", "min_l2": "metric"}


def test_plugins_lists_builtins_and_the_installed_third_party_method(cli_process):
    rows = {r["name"]: r for r in cli_process.json("plugins", "--json")}
    for name, kind in BUILTINS.items():
        assert (rows[name]["kind"], rows[name]["package"], rows[name]["status"]) == \
            (kind, "wmplat", "ok"), name
    assert rows["copycat"] == {"name": "copycat", "kind": "method", "package": "wmplat-copycat",
                               "version": "0.1.0", "status": "ok"}


def test_plugins_table_names_each_package(cli):
    out = cli("plugins").stdout
    assert "copycat" in out and "wmplat-copycat" in out and "min_l2" in out


def test_a_plugin_that_fails_to_import_is_reported_and_the_others_still_work(
        cli, install_plugin, default_zoo):
    env = install_plugin("wmplat-broken")
    rows = {r["name"]: r for r in cli.json("plugins", "--json", env=env)}
    assert rows["broken"]["package"] == "wmplat-broken"
    assert rows["broken"]["status"].startswith("error: failed to load: ModuleNotFoundError")
    assert rows["copycat"]["status"] == "ok"

    proc = cli("evaluate", "--method", "copycat", "--samples", "4", env=env)
    assert "warning: plugin 'broken' (wmplat-broken 0.1.0): failed to load" in proc.stderr
    assert "copycat" in proc.stdout


def test_strict_mode_makes_a_failing_plugin_fatal(cli, install_plugin):
    env = {**install_plugin("wmplat-broken"), "WMPLAT_STRICT_PLUGINS": "1"}
    proc = cli("plugins", env=env, ok=False)
    assert proc.returncode == 1
    assert "plugin 'broken' (wmplat-broken 0.1.0)" in proc.stderr
    assert "WMPLAT_STRICT_PLUGINS" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_two_packages_registering_one_name_is_an_error_naming_both(cli, install_plugin,
                                                                    default_zoo):
    env = install_plugin("wmplat-clash")
    proc = cli("evaluate", "--method", "copycat", "--samples", "4", env=env, ok=False)
    assert proc.returncode == 1
    assert "'copycat' is registered twice" in proc.stderr
    assert "wmplat-clash 0.1.0" in proc.stderr and "wmplat-copycat 0.1.0" in proc.stderr
    assert not (cli.cwd / "wmplat-results").exists()

    statuses = [r["status"] for r in cli.json("plugins", "--json", env=env)
                if r["kind"] == "plugin"]
    assert any("already registered by" in s for s in statuses)


def test_a_reserved_name_is_refused(cli, install_plugin):
    env = install_plugin("wmplat-clash")
    rows = cli.json("plugins", "--json", env=env)
    clash = next(r for r in rows if r["package"] == "wmplat-clash" and r["kind"] == "plugin")
    assert "method name 'fresh' is reserved for wmplat's reference rows" in clash["status"]
    assert not any(r["name"] == "fresh" for r in rows)


def test_a_plugin_that_registers_nothing_says_why(cli, install_plugin):
    env = install_plugin("wmplat-hollow")
    rows = {r["name"]: r for r in cli.json("plugins", "--json", env=env)}
    assert rows["hollow"]["status"].startswith("error: registers nothing")
    assert "@wmplat.hookimpl" in rows["hollow"]["status"]
    assert "forgotten" not in rows
