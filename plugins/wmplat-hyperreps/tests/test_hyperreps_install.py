"""The package installs on its own and wmplat finds it through its entry point."""

import subprocess
import sys


def test_installed_package_is_discovered_through_its_entry_point(cli, installed):
    rows = cli.json("plugins", "--json")
    ours = {(r["name"], r["kind"]): r for r in rows if r["package"] == "wmplat-hyperreps"}
    assert set(ours) == {("hyperreps", "method"), ("mnist1d-cnn", "dataset")}
    assert all(r["status"] == "ok" and r["version"] == "0.1.0" for r in ours.values())
    where = subprocess.run([sys.executable, "-c", "import wmplat_hyperreps; "
                            "print(wmplat_hyperreps.__file__)"],
                           env=cli.env, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(installed))


def test_the_zoo_is_listed_under_the_task_name(cli):
    assert "mnist1d-cnn" in cli("zoo", "list").stdout

