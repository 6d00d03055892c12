"""The `wmplat` command as a real process: its exit codes, its one-line errors and warnings,
and tracebacks only under --debug. The rest of the suite runs commands in process
(tests/inprocess.py); these check that a process gives what that runner stands in for."""

import pytest


def test_the_version_is_printed_and_the_process_exits_0(cli_process):
    proc = cli_process("--version")
    assert proc.stdout.startswith("wmplat, version ") and proc.stderr == ""


@pytest.mark.parametrize("args, message", [
    (["evaluate", "--method", "noize"], "error: unknown method 'noize'"),
    (["zoo", "info", "a b"], "error: zoo name 'a b' is not a valid name"),
    (["evaluate", "--method", "crash-in-fit", "--samples", "4"],
     "error: method 'crash-in-fit' (wmplat-misbehaving 0.1.0) failed: RuntimeError: out of "
     "coffee"),
])
def test_an_error_is_one_line_on_stderr_and_exit_code_1(cli_process, default_zoo, args, message):
    proc = cli_process(*args, env={"WMPLAT_QUIET": "1"}, ok=False)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [proc.stderr.strip()], proc.stderr
    assert proc.stderr.startswith(message), proc.stderr
    assert not (cli_process.cwd / "wmplat-results").exists()


def test_debug_lets_the_traceback_out_with_exit_code_1(cli_process, default_zoo):
    proc = cli_process("--debug", "evaluate", "--method", "crash-in-fit", "--samples", "4",
                       env={"WMPLAT_QUIET": "1"}, ok=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("Traceback (most recent call last):")
    assert "RuntimeError: out of coffee" in proc.stderr


def test_a_bad_option_is_click_s_usage_error_with_exit_code_2(cli_process):
    proc = cli_process("evaluate", "--method", "noise", "--samples", "many", ok=False)
    assert proc.returncode == 2 and "'many' is not a valid integer" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_plugin_warning_is_one_line_naming_the_plugin(cli_process):
    proc = cli_process("zoo", "list", env={"WMPLAT_LOAD_PLUGINS": "copycat,nope"})
    [warning] = [line for line in proc.stderr.splitlines() if line.startswith("warning: ")]
    assert warning.startswith("warning: plugin 'nope': WMPLAT_LOAD_PLUGINS names it, but no "
                              "installed package has an entry point of that name")
    assert "digits-mlp" in proc.stdout


def test_a_package_pip_installed_into_a_folder_is_found_by_its_entry_point(cli_process,
                                                                          install_plugin):
    rows = {r["name"]: r for r in cli_process.json("plugins", "--json",
                                                   env=install_plugin("wmplat-clash"))}
    assert rows["copycat"]["package"] == "wmplat-copycat"
    assert {r["package"] for r in rows.values() if r["name"] != "copycat"} >= {"wmplat-clash"}
