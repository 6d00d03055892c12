"""`wmplat leaderboard`: the stored rows in every format, and bad result files."""

import csv
import io
import json

import pytest
from conftest import Cli


@pytest.fixture(scope="module")
def results(tmp_path_factory, default_zoo):
    folder = tmp_path_factory.mktemp("leaderboard")
    Cli(folder)("evaluate", "--method", "copycat", "--samples", "16")
    return folder


def test_json_is_the_list_of_stored_rows(results):
    rows = Cli(results).json("leaderboard", "--format", "json")
    on_disk = [json.loads(p.read_text()) for p in results.rglob("result.json")]

    def by_key(rows):
        # two noise and two average rows: a row is its method and config, not its method
        keyed = {(r["method"], r["config_hash"]): r for r in rows}
        assert len(keyed) == len(rows)
        return keyed

    assert len(rows) == len(on_disk) == 10
    assert by_key(rows) == by_key(on_disk)


def test_rows_are_ordered_method_then_baselines_then_reference(results):
    kinds = [r["kind"] for r in Cli(results).json("leaderboard", "--format", "json")]
    assert kinds == sorted(kinds, key=["method", "baseline", "reference"].index)


def test_markdown_is_a_table_with_a_row_per_result(results):
    out = Cli(results)("leaderboard", "--format", "markdown").stdout
    lines = [line for line in out.splitlines() if line.startswith("|")]
    assert lines[0].startswith("| method | kind | n | seed | acc | max sim |")
    assert lines[0].endswith("| verdict | dominated by |")
    assert len(lines) == 2 + 10
    assert any(line.startswith("| noise(sigma=0.1) | baseline | 16 | 0 |") for line in lines)
    assert "### zoo digits-mlp" in out


def test_csv_holds_the_same_numbers_as_json(results):
    cli = Cli(results)
    rows = {r["method"] + r["config_hash"]: r for r in cli.json("leaderboard", "--format", "json")}
    table = list(csv.DictReader(io.StringIO(cli("leaderboard", "--format", "csv").stdout)))
    assert len(table) == len(rows)
    for record in table:
        row = rows[record["method"] + record["config_hash"]]
        assert float(record["accuracy_mean"]) == row["metrics"]["accuracy_mean"]
        assert float(record["novelty_auc"]) == row["metrics"]["novelty_auc"]
        assert json.loads(record["novelty_auc_ci"]) == row["metrics"]["novelty_auc_ci"]
        assert record["verdict"] == row["verdict"]
        assert record["torch"] == row["environment"]["torch"]


def test_the_table_is_the_default(results):
    out = Cli(results)("leaderboard").stdout
    assert out.splitlines()[0].startswith("zoo digits-mlp")
    assert "copycat" in out and "fresh" in out


def test_filtering_by_another_zoo_finds_nothing(results):
    cli = Cli(results)
    assert cli.json("leaderboard", "--zoo", "other", "--format", "json") == []
    proc = cli("leaderboard", "--zoo", "other", ok=False)
    assert "no results for zoo 'other'" in proc.stderr


def test_a_corrupt_result_file_is_named(cli, results, tmp_path):
    import shutil
    shutil.copytree(results / "wmplat-results", tmp_path / "wmplat-results")
    [path] = (tmp_path / "wmplat-results").rglob("replica/*/result.json")
    row = json.loads(path.read_text())
    row["kind"] = "oracle"
    path.write_text(json.dumps(row))
    proc = cli("leaderboard", "--results-dir", str(tmp_path / "wmplat-results"), ok=False)
    assert str(path) in proc.stderr and "kind:" in proc.stderr


def test_a_result_from_a_newer_schema_is_refused(cli, results, tmp_path):
    import shutil
    shutil.copytree(results / "wmplat-results", tmp_path / "wmplat-results")
    [path] = (tmp_path / "wmplat-results").rglob("fresh/*/result.json")
    row = json.loads(path.read_text())
    row["schema_version"] = 9
    path.write_text(json.dumps(row))
    proc = cli("leaderboard", "--results-dir", str(tmp_path / "wmplat-results"), ok=False)
    assert "schema_version 9 is newer" in proc.stderr


def test_a_config_too_long_for_a_table_is_labelled_by_its_hash():
    from wmplat.evaluation.store import config_hash, config_label

    short = {"sigma": 0.1}
    assert config_label("noise", short) == "noise(sigma=0.1)"
    long = {f"option_{i}": 1000 * i for i in range(8)}
    assert config_label("pdiff", long) == f"pdiff(config {config_hash(long)})"
    assert config_label("pdiff", {**long, "option_0": 1}) != config_label("pdiff", long)
    subset = {"sigma": 0.06, "params": ["norm1.weight", "norm1.bias", "norm2.weight"]}
    assert config_label("noise", subset) == "noise(sigma=0.06, params=[3 items])"


def html_fails(cli, results, output) -> str:
    proc = cli("leaderboard", "--format", "html", "--results-dir",
               str(results / "wmplat-results"), "--output", str(output), ok=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: --output ")
    return proc.stderr


def test_html_into_a_missing_folder_is_refused_not_created(cli, results, tmp_path):
    err = html_fails(cli, results, tmp_path / "missing" / "deeper" / "x.html")
    assert f"folder {tmp_path / 'missing' / 'deeper'} does not exist; create it first" in err
    assert not (tmp_path / "missing").exists()


def test_html_onto_a_folder_is_refused(cli, results, tmp_path):
    err = html_fails(cli, results, tmp_path)
    assert f"--output {tmp_path} is a folder; give the path of a file" in err
    assert list(tmp_path.iterdir()) == []


def test_html_under_a_file_is_refused(cli, results, tmp_path):
    (tmp_path / "notes").write_text("mine")
    err = html_fails(cli, results, tmp_path / "notes" / "x.html")
    assert f"{tmp_path / 'notes'} is not a folder" in err
    assert (tmp_path / "notes").read_text() == "mine"
