"""`wmplat leaderboard --aggregate seeds`: real evaluations of three seeds, aggregated through the
CLI, against the mean, standard deviation and t-interval computed here from the stored rows."""

import csv
import io
import json
import math
import shutil
from collections import Counter

import numpy as np
import pytest
from conftest import Cli, plugin_module
from scipy.stats import t

from wmplat.errors import ResultError
from wmplat.evaluation.store import config_hash, read_per_sample, read_result, write_result
from wmplat.measures import SUMMARIES
from wmplat.schema import SeedAggregate, parse_versioned

SEEDS = (0, 1, 2)
AGGREGATE = ("leaderboard", "--aggregate", "seeds")
# what rows share to be seeds of one aggregate (docs/results.md, "Aggregated over seeds")
GROUP = ("zoo", "zoo_revision", "task", "kind", "method", "config_hash", "n_samples",
         "method_version")


@pytest.fixture(scope="module")
def results(tmp_path_factory, default_zoo):
    """Three seeds of `diagnosed` (a test method whose diagnostic `self_check`, a plugin's
    number, differs by seed) beside the baselines and the references, 8 samples each."""
    from wmplat.plugins import register, unregister

    name = register(plugin_module("wmplat-diagnosed"), name="diagnosed")
    folder = tmp_path_factory.mktemp("aggregate")
    for seed in SEEDS:
        Cli(folder)("evaluate", "--method", "diagnosed", "--samples", "8", "--seed", str(seed),
                    env={"WMPLAT_QUIET": "1"})
    yield folder / "wmplat-results"
    unregister(name)


def aggregates(cli, results_dir) -> list[dict]:
    return cli.json(*AGGREGATE, "--format", "json", "--results-dir", str(results_dir))


def stored_groups(results_dir) -> dict[tuple, list[dict]]:
    groups: dict[tuple, list[dict]] = {}
    for path in sorted(results_dir.rglob("result.json")):
        row = json.loads(path.read_text())
        groups.setdefault(tuple(row[k] for k in GROUP), []).append(row)
    return groups


def is_number_metric(name: str) -> bool:
    return name not in SUMMARIES or SUMMARIES[name].format == "number"


def expected(values: list[float]) -> dict | None:
    """The aggregate of one metric computed directly: numpy's mean and sample std, scipy's t."""
    if not values:
        return None
    n = len(values)
    mean = float(np.mean(values))
    if n == 1:
        return {"mean": mean, "std": None, "n": 1, "ci": None}
    std = float(np.std(values, ddof=1))
    half = t.ppf(0.975, n - 1) * std / math.sqrt(n)
    return {"mean": mean, "std": std, "n": n, "ci": [mean - half, mean + half]}


def assert_close(got: dict | None, want: dict | None, name: str) -> None:
    """The same count and nulls, and the same numbers up to rounding."""
    if want is None:
        assert got is None, name
        return
    assert got["n"] == want["n"], name
    assert (got["std"] is None, got["ci"] is None) == (want["std"] is None, want["ci"] is None)

    def numbers(a):
        return [a["mean"], *([a["std"]] if a["std"] is not None else []), *(a["ci"] or [])]

    assert numbers(got) == pytest.approx(numbers(want), rel=1e-12, abs=1e-15), name


def check_against_stored(aggregate: dict, rows: list[dict]) -> None:
    names = {m for r in rows for m in r["metrics"] if is_number_metric(m)}
    assert set(aggregate["metrics"]) == names
    for name in names:
        want = expected([r["metrics"][name] for r in rows if r["metrics"].get(name) is not None])
        assert_close(aggregate["metrics"][name], want, name)
    assert aggregate["verdicts"] == Counter(r.get("verdict") or "none" for r in rows)
    assert aggregate["n_seeds"] == len(rows)
    seeds = [r["seed"] for r in rows]
    assert aggregate["seeds"] == ([None] if seeds == [None] else sorted(seeds))


def test_each_aggregate_is_the_mean_and_t_interval_of_its_stored_seeds(cli, results):
    out = aggregates(cli, results)
    groups = stored_groups(results)
    assert len(out) == len(groups) == 10        # diagnosed, 7 baselines, train, fresh
    for aggregate in out:
        check_against_stored(aggregate, groups[tuple(aggregate[k] for k in GROUP)])
    [diagnosed] = [a for a in out if a["method"] == "diagnosed"]
    assert diagnosed["seeds"] == list(SEEDS) and diagnosed["n_seeds"] == 3
    # a plugin's number is aggregated like wmplat's own; novelty_auc_ci, an interval, is not
    assert diagnosed["metrics"]["self_check"]["mean"] == pytest.approx(1 / 7)
    assert diagnosed["metrics"]["accuracy_mean"]["std"] > 0
    assert "novelty_auc_ci" not in diagnosed["metrics"]
    assert list(diagnosed["metrics"])[-1] == "self_check"    # wmplat's values first
    assert [a["kind"] for a in out] == sorted((a["kind"] for a in out),
                                              key=["method", "baseline", "reference"].index)


def test_equal_values_have_the_interval_of_their_value(cli, results):
    [replica] = [a for a in aggregates(cli, results) if a["method"] == "replica"]
    for stored in stored_groups(results).values():
        if stored[0]["method"] == "replica":
            value = stored[0]["metrics"]["replica_rate"]
    assert replica["metrics"]["replica_rate"] == {"mean": value, "std": 0.0, "n": 3,
                                                  "ci": [value, value]}


def test_a_reference_row_is_an_aggregate_of_itself(cli, results):
    out = {a["method"]: a for a in aggregates(cli, results) if a["kind"] == "reference"}
    assert set(out) == {"fresh", "train"}
    for method, aggregate in out.items():
        [row] = [json.loads(p.read_text()) for p in results.rglob(f"{method}/*/result.json")]
        assert aggregate["seeds"] == [None] and aggregate["n_seeds"] == 1
        assert aggregate["verdicts"] == {row["verdict"]: 1}
        assert aggregate["metrics"]["accuracy_mean"] == {
            "mean": row["metrics"]["accuracy_mean"], "std": None, "n": 1, "ci": None}


def copy_row(folder, dest, **changes) -> None:
    """A stored row's copy with `changes`, written as wmplat writes rows."""
    write_result(dest, read_result(folder / "result.json").model_copy(update=changes),
                 read_per_sample(folder))


def test_other_revisions_configs_and_versions_are_other_aggregates(cli, results, tmp_path):
    copied = tmp_path / "results"
    shutil.copytree(results, copied)
    row = next(copied.rglob("diagnosed/*-seed1-n8"))
    stored = read_result(row / "result.json")
    revision, version = stored.zoo_revision, stored.method_version
    config = {"spread": 2}
    copy_row(row, copied / "digits-mlp@local-000000000000" / "diagnosed" / "a",
             zoo_revision="local-000000000000")
    copy_row(row, copied / "elsewhere" / "b", config=config, config_hash=config_hash(config))
    copy_row(row, copied / "elsewhere" / "c", method_version="9.9.9")
    out = [a for a in aggregates(cli, copied) if a["method"] == "diagnosed"]
    found = [[a["n_seeds"], a["zoo_revision"], a["config"], a["method_version"]] for a in out]
    assert sorted(found, key=json.dumps) == sorted([[3, revision, {}, version],
                                                    [1, "local-000000000000", {}, version],
                                                    [1, revision, config, version],
                                                    [1, revision, {}, "9.9.9"]], key=json.dumps)
    groups = stored_groups(copied)
    for aggregate in out:
        check_against_stored(aggregate, groups[tuple(aggregate[k] for k in GROUP)])


@pytest.fixture
def older_and_mixed(results, tmp_path):
    """The results with one diagnosed row as an older wmplat stored it (no heldout_copy_rate,
    no error_consistency_median, no verdict) and another judged `interpolates`."""
    copied = tmp_path / "results"
    shutil.copytree(results, copied)
    old = next(copied.rglob("diagnosed/*-seed0-n8/result.json"))
    row = json.loads(old.read_text())
    del row["metrics"]["heldout_copy_rate"], row["metrics"]["error_consistency_median"]
    del row["verdict"]
    old.write_text(json.dumps(row, indent=2))
    mixed = next(copied.rglob("diagnosed/*-seed2-n8"))
    copy_row(mixed, mixed, verdict="interpolates")
    return copied


def test_older_rows_still_read_and_count_as_no_verdict(cli, older_and_mixed):
    plain = cli.json("leaderboard", "--format", "json", "--results-dir", str(older_and_mixed))
    [old] = [r for r in plain if r["method"] == "diagnosed" and r["seed"] == 0]
    assert old["verdict"] is None and old["metrics"]["heldout_copy_rate"] is None
    [aggregate] = [a for a in aggregates(cli, older_and_mixed) if a["method"] == "diagnosed"]
    [rows] = [g for g in stored_groups(older_and_mixed).values() if g[0]["method"] == "diagnosed"]
    assert aggregate["metrics"]["heldout_copy_rate"]["n"] == 2
    assert aggregate["metrics"]["error_consistency_median"]["n"] == 2
    [kept] = [r["verdict"] for r in rows if r["seed"] == 1]
    assert aggregate["verdicts"] == Counter(["none", "interpolates", kept])
    check_against_stored(aggregate, rows)
    table = cli(*AGGREGATE, "--results-dir", str(older_and_mixed)).stdout
    [line] = [x for x in table.splitlines() if x.startswith("diagnosed ")]
    kappa = aggregate["metrics"]["error_consistency_median"]
    assert f"  {kappa['mean']:.3f} ± {kappa['ci'][1] - kappa['mean']:.3f} (n=2)  " in line
    counts = ", ".join(f"{v} {c}" for v, c in aggregate["verdicts"].items())
    assert line.endswith(counts)


def test_an_invalid_seed_is_counted_and_named_under_the_table(cli, results, tmp_path):
    copied = tmp_path / "results"
    shutil.copytree(results, copied)
    row = next(copied.rglob("diagnosed/*-seed1-n8"))
    copy_row(row, row, verdict="invalid")
    table = cli(*AGGREGATE, "--results-dir", str(copied)).stdout
    [line] = [x for x in table.splitlines() if x.startswith("diagnosed ")]
    assert line.endswith("INVALID 1") and ", INVALID 1" in line
    assert "! INVALID diagnosed in 1 of 3 seeds: samples that copy heldout runs" in table
    markdown = cli(*AGGREGATE, "--format", "markdown", "--results-dir", str(copied)).stdout
    assert "> **INVALID diagnosed in 1 of 3 seeds:" in markdown


def test_the_plain_leaderboard_is_the_stored_rows_as_before(cli, results):
    rows = cli.json("leaderboard", "--format", "json", "--results-dir", str(results))
    stored = [json.loads(p.read_text()) for p in results.rglob("result.json")]
    assert sorted(rows, key=json.dumps) == sorted(stored, key=json.dumps)
    table = cli("leaderboard", "--results-dir", str(results)).stdout
    assert "n_seeds" not in table and "±" not in table
    assert table.splitlines()[1].startswith("method  ") and " seed " in table.splitlines()[1]


def test_markdown_has_a_row_per_aggregate_with_mean_and_half_width(cli, results):
    out = aggregates(cli, results)
    text = cli(*AGGREGATE, "--format", "markdown", "--results-dir", str(results)).stdout
    lines = [x for x in text.splitlines() if x.startswith("|")]
    assert text.startswith("### zoo digits-mlp")
    assert lines[0].startswith("| method | kind | n | n_seeds | acc | max sim |")
    assert "| novelty AUC |" in lines[0] and lines[0].endswith("| self_check | verdicts |")
    assert len(lines) == 2 + len(out)
    for aggregate, line in zip(out, lines[2:], strict=True):
        acc = aggregate["metrics"]["accuracy_mean"]
        shown = f"{acc['mean']:.3f}" + (f" ± {acc['ci'][1] - acc['mean']:.3f}" if acc["ci"]
                                        else "")
        counts = aggregate["verdicts"]
        verdicts = ", ".join(f"{v} {c}" for v, c in counts.items()) if len(counts) > 1 else \
            f"{next(iter(counts))} {aggregate['n_seeds']}/{aggregate['n_seeds']}"
        assert line.startswith(f"| {aggregate['method']}")
        assert f"| {aggregate['n_samples']} | {aggregate['n_seeds']} | {shown} |" in line
        assert line.endswith(f"| {verdicts} |")


def test_csv_holds_the_numbers_of_the_json(cli, results):
    out = aggregates(cli, results)
    text = cli(*AGGREGATE, "--format", "csv", "--results-dir", str(results)).stdout
    table = list(csv.DictReader(io.StringIO(text)))
    assert len(table) == len(out)
    for record, aggregate in zip(table, out, strict=True):
        assert (record["method"], record["config_hash"]) == (aggregate["method"],
                                                             aggregate["config_hash"])
        assert json.loads(record["seeds"]) == aggregate["seeds"]
        assert int(record["n_seeds"]) == aggregate["n_seeds"]
        for name in ("accuracy_mean", "novelty_auc", "self_check"):
            value = aggregate["metrics"].get(name)
            if value is None:
                assert record[f"{name}_n"] == "0" and record[f"{name}_mean"] == ""
                continue
            assert float(record[f"{name}_mean"]) == value["mean"]
            assert int(record[f"{name}_n"]) == value["n"]
            bounds = (record[f"{name}_ci_low"], record[f"{name}_ci_high"])
            if value["ci"] is None:
                assert bounds == ("", "")
            else:
                assert [float(b) for b in bounds] == value["ci"]
        for verdict in ("novel", "memorizes", "none"):
            assert int(record[f"verdict_{verdict}"]) == aggregate["verdicts"].get(verdict, 0)


def test_json_rows_are_the_versioned_model_and_round_trip(cli, results):
    for aggregate in aggregates(cli, results):
        model = parse_versioned(SeedAggregate, aggregate, "aggregate", ResultError)
        assert model.model_dump(mode="json") == aggregate
        assert (aggregate["schema_version"], aggregate["aggregate"], aggregate["interval"]) == \
            (1, "seeds", "t95")
    newer = {**aggregate, "schema_version": 2}
    with pytest.raises(ResultError, match="schema_version 2 is newer"):
        parse_versioned(SeedAggregate, newer, "aggregate", ResultError)
    with pytest.raises(ResultError, match="n_seeds is 5 but seeds lists 1"):
        parse_versioned(SeedAggregate, {**aggregate, "n_seeds": 5}, "aggregate", ResultError)
    with pytest.raises(ResultError, match="mean: Extra inputs"):
        parse_versioned(SeedAggregate, {**aggregate, "mean": 1}, "aggregate", ResultError)


def test_one_result_stored_twice_is_named_not_averaged(cli, results, tmp_path):
    copied = tmp_path / "results"
    shutil.copytree(results, copied)
    row = next(copied.rglob("diagnosed/*-seed1-n8"))
    shutil.copytree(row, copied / "backup" / row.name)
    proc = cli(*AGGREGATE, "--results-dir", str(copied), ok=False)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("error: two stored rows of diagnosed on zoo digits-mlp")
    assert "have seed 1: the results folder holds one result twice; remove a copy" in proc.stderr


def test_an_infinite_value_is_one_line_naming_the_aggregate(cli, results, tmp_path):
    copied = tmp_path / "results"
    shutil.copytree(results, copied)
    path = next(copied.rglob("diagnosed/*-seed1-n8/result.json"))
    path.write_text(path.read_text().replace('"accuracy_max": ', '"accuracy_max": Infinity, "x": ',
                                             1))
    proc = cli(*AGGREGATE, "--results-dir", str(copied), ok=False)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    assert proc.stderr == ("error: the aggregate over seeds of diagnosed on zoo digits-mlp: "
                           "accuracy_max of seed 1 is inf; a stored value must be a finite "
                           "number or null\n")


@pytest.mark.parametrize(("args", "code", "message"), [
    (("--format", "html"), 1,
     "error: --aggregate takes --format table, markdown, json or csv, not html"),
    (("--output", "x.html"), 1, "error: --output is for --format html"),
    (("--zoo", "other"), 1, "error: no results for zoo 'other' under"),
])
def test_a_bad_combination_is_one_line(cli, results, args, code, message):
    proc = cli(*AGGREGATE, "--results-dir", str(results), *args, ok=False)
    assert proc.returncode == code and proc.stdout == ""
    assert proc.stderr.startswith(message) and proc.stderr.count("\n") == 1


def test_only_seeds_aggregate(cli, results):
    proc = cli("leaderboard", "--aggregate", "runs", "--results-dir", str(results), ok=False)
    assert proc.returncode == 2 and "'runs' is not 'seeds'" in proc.stderr


def test_no_rows_aggregate_to_an_empty_list(cli, tmp_path):
    assert cli.json(*AGGREGATE, "--format", "json", "--results-dir", str(tmp_path)) == []
