"""The values a result holds are declared once (wmplat/measures.py): the docs describe exactly
those, the code that produces them returns exactly those, and the schema, the tables, the
parquet columns and the report's legend follow them."""

import importlib
import io
import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from conftest import Cli
from safetensors.torch import load_file

from wmplat.measures import (
    COLUMNS,
    HELDOUT_CHECK,
    PER_SAMPLE_VALUES,
    RUNNER,
    STANDARD,
    STATISTICS,
    SUMMARIES,
    SUMMARY_VALUES,
)

DOCS = Path(__file__).parent.parent / "docs"
PER_SAMPLE = {value.name: value for value in PER_SAMPLE_VALUES}


def tables(text: str) -> list[tuple[list[str], list[list[str]]]]:
    """Every Markdown table in `text`: its header cells and its rows' cells."""
    found = []
    for block in re.findall(r"(?:^\|.*\|\n)+", text, flags=re.M):
        lines = [[cell.strip() for cell in line.strip()[1:-1].split("|")]
                 for line in block.splitlines()]
        found.append((lines[0], lines[2:]))
    return found


def table(text: str, *header: str) -> list[list[str]]:
    """The rows of the one table whose header starts with `header`."""
    [rows] = [rows for head, rows in tables(text) if tuple(head[:len(header)]) == header]
    return rows


def section(text: str, heading: str) -> str:
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else None]


def produced_by(name: str) -> str:
    """How the docs name what produces a value."""
    return f"wmplat's {name}" if name in RUNNER else f"metric `{name}`"


def metrics_md() -> str:
    return (DOCS / "metrics.md").read_text()


def built_in_metrics() -> list[type]:
    """The classes the built-in metric modules register, through their real hook."""
    from wmplat.plugins import DEFAULT_PLUGINS

    classes: list[type] = []
    for module in DEFAULT_PLUGINS:
        if module.startswith("wmplat.metrics."):
            importlib.import_module(module).register_metrics(register=classes.append)
    return classes


# --- the docs --------------------------------------------------------------------------------

def test_metrics_md_lists_every_summary_value_as_declared_in_order():
    overview = section(metrics_md(), "Every value, declared once")
    rows = table(overview, "value", "standard")
    assert rows == [[f"`{v.name}`", "yes" if v.standard else "no", produced_by(v.produced_by),
                     v.column or "–", v.better or "–", v.scale, v.meaning]
                    for v in SUMMARY_VALUES]


def test_metrics_md_lists_every_per_sample_value_as_declared_in_order():
    overview = section(metrics_md(), "Every value, declared once")
    rows = table(overview, "value", "produced by", "dtype")
    assert rows == [[f"`{v.name}`", produced_by(v.produced_by), v.dtype, v.meaning]
                    for v in PER_SAMPLE_VALUES]


def test_each_metric_section_heading_names_declared_values_of_that_metric():
    """`## \\`accuracy\\` → \\`accuracy_mean\\`, ...`: one heading per built-in metric's values,
    naming nothing that is not declared."""
    headings = re.findall(r"^## (.*→.*)$", metrics_md(), flags=re.M)
    named = [n for heading in headings for n in re.findall(r"`([^`]+)`", heading)]
    assert set(named) <= set(SUMMARIES) | set(PER_SAMPLE), named
    by_metrics = {v.name for v in (*SUMMARY_VALUES, *PER_SAMPLE_VALUES)
                  if v.produced_by not in RUNNER}
    assert set(named) == by_metrics


def test_every_value_in_a_field_table_of_metrics_md_is_declared():
    documented = [re.fullmatch(r"`(\w+)`", row[0]) for head, rows in tables(metrics_md())
                  if head[0] == "field" for row in rows]
    names = {m.group(1) for m in documented if m}
    assert names <= set(SUMMARIES), names - set(SUMMARIES)
    statistics = {v.name for v in SUMMARY_VALUES if v.produced_by == STATISTICS}
    assert statistics <= names, statistics - names


def test_trust_md_defines_every_value_of_the_heldout_check():
    trust = (DOCS / "trust.md").read_text()
    for value in (*SUMMARY_VALUES, *PER_SAMPLE_VALUES):
        if value.produced_by == HELDOUT_CHECK:
            assert f"`{value.name}`" in trust, value.name


def test_results_md_lists_the_standard_fields_the_columns_and_the_tensors():
    results = (DOCS / "results.md").read_text()
    fields = table(results, "field", "type", "filled by")
    assert [row[0] for row in fields] == [f"`{name}`" for name in STANDARD]
    for row in fields:
        value = SUMMARIES[row[0].strip("`")]
        if value.produced_by not in RUNNER:
            assert row[2] == produced_by(value.produced_by), row
    headers = table(results, "header", "metric")
    assert headers == [[f"`{h}`", f"`{n}`" + (f" with `{SUMMARIES[n].with_interval}`"
                                               if SUMMARIES[n].with_interval else "")]
                       for h, n in COLUMNS]
    tensors = table(results, "tensor", "dtype")
    assert tensors == [[f"`{v.name}`", v.dtype] for v in PER_SAMPLE_VALUES
                       if v.produced_by not in RUNNER]


# --- what produces the values ----------------------------------------------------------------

def test_each_built_in_metric_declares_the_names_declared_for_it():
    classes = built_in_metrics()
    for cls in classes:
        assert cls.summary == tuple(v.name for v in SUMMARY_VALUES if v.produced_by == cls.name)
        assert cls.per_sample == tuple(v.name for v in PER_SAMPLE_VALUES
                                       if v.produced_by == cls.name)
    producers = {v.produced_by for v in (*SUMMARY_VALUES, *PER_SAMPLE_VALUES)} - set(RUNNER)
    assert producers == {cls.name for cls in classes}


def test_the_statistics_return_the_values_declared_for_them():
    from wmplat.evaluation.statistics import judge

    g = torch.Generator().manual_seed(0)
    names = ("accuracy", "max_similarity", "min_l2", "aligned_l2", "hull_residual")
    samples = {n: torch.rand(6, generator=g) for n in names}
    null = {n: torch.rand(25, generator=g) for n in names}
    summary = set(judge(samples, null).summary) - {"verdict"}   # a field of the row, not a metric
    assert summary == {v.name for v in SUMMARY_VALUES if v.produced_by == STATISTICS}


@pytest.fixture(scope="module")
def results(tmp_path_factory, default_zoo) -> Path:
    """A real evaluation with the built-in metrics only (no installed metric plugin)."""
    folder = tmp_path_factory.mktemp("declared")
    Cli(folder)("evaluate", "--method", "copycat", "--samples", "8",
                env={"WMPLAT_LOAD_PLUGINS": "copycat"})
    return folder / "wmplat-results"


def test_a_stored_row_holds_every_declared_value_and_nothing_else(results):
    folders = [p.parent for p in results.rglob("result.json")]
    assert {f.parent.name for f in folders} >= {"copycat", "fresh"}
    for folder in folders:
        row = json.loads((folder / "result.json").read_text())
        assert list(row["metrics"])[:len(STANDARD)] == list(STANDARD)
        assert set(row["metrics"]) == set(SUMMARIES), folder
        tensors = load_file(folder / "per_sample.safetensors")
        assert {n: str(t.dtype).removeprefix("torch.") for n, t in tensors.items()} == \
            {v.name: v.dtype for v in PER_SAMPLE_VALUES}, folder


# --- what follows the declarations -----------------------------------------------------------

def test_the_schema_fields_are_the_standard_values_of_schema_version_1():
    from wmplat.schema import Metrics

    # the result schema is public: these ten, in this order, since schema_version 1
    assert list(Metrics.model_fields) == list(STANDARD) == [
        "accuracy_mean", "accuracy_max", "max_similarity_median", "min_l2_median",
        "aligned_l2_median", "novelty_auc", "novelty_auc_ci", "replica_rate", "novel_good_rate",
        "heldout_copy_rate"]
    properties = Metrics.model_json_schema()["properties"]
    assert properties["novelty_auc_ci"]["anyOf"][0]["type"] == "array"
    assert all(properties[n]["anyOf"] == [{"type": "number"}, {"type": "null"}]
               for n in STANDARD if n != "novelty_auc_ci")


def test_a_row_stored_before_later_fields_still_reads_with_nulls(results, tmp_path):
    shutil.copytree(results, tmp_path / "results")
    [path] = (tmp_path / "results").rglob("copycat/*/result.json")
    row = json.loads(path.read_text())
    row["metrics"] = {"accuracy_mean": row["metrics"]["accuracy_mean"]}
    path.write_text(json.dumps(row))
    rows = Cli(tmp_path).json("leaderboard", "--format", "json", "--results-dir",
                              str(tmp_path / "results"))
    [read] = [r for r in rows if r["method"] == "copycat"]
    assert read["metrics"] == {name: (row["metrics"]["accuracy_mean"]
                                      if name == "accuracy_mean" else None)
                               for name in STANDARD}


def test_the_table_columns_are_the_declared_columns_in_order(results, tmp_path):
    out = Cli(tmp_path)("leaderboard", "--format", "markdown", "--results-dir",
                        str(results)).stdout
    header = next(line for line in out.splitlines() if line.startswith("| method |"))
    assert header == "| " + " | ".join(["method", "kind", "n", "seed", *(h for h, _ in COLUMNS),
                                        "verdict", "dominated by"]) + " |"


def test_the_csv_lists_the_standard_values_then_the_others(results, tmp_path):
    out = Cli(tmp_path)("leaderboard", "--format", "csv", "--results-dir", str(results)).stdout
    header = out.splitlines()[0].split(",")
    listed = [name for name in header if name in SUMMARIES]
    assert listed == [*STANDARD, *(v.name for v in SUMMARY_VALUES if not v.standard)]


def test_the_parquet_table_has_a_column_per_declared_value(results):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from wmplat.evaluation.store import read_result
    from wmplat.hub.results import parquet_table

    rows = [read_result(p) for p in sorted(results.rglob("result.json"))]
    table = pq.read_table(io.BytesIO(parquet_table(rows)))
    for value in SUMMARY_VALUES:
        kind = pa.list_(pa.float64()) if value.format == "interval" else pa.float64()
        assert table.schema.field(value.name).type == kind, value.name
    copycat = next(r for r in table.to_pylist() if r["method"] == "copycat")
    [row] = [r for r in rows if r.method == "copycat"]
    assert copycat["novelty_auc_ci"] == list(row.metrics.novelty_auc_ci)


def test_the_report_legend_explains_each_column_with_its_direction():
    from wmplat.report.html import legend

    entries = re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", legend())
    assert [h for h, _ in entries] == [*(h.replace("&", "&amp;") for h, _ in COLUMNS),
                                       "dominated by"]
    for (_, name), (_, text) in zip(COLUMNS, entries, strict=False):
        assert text.endswith(f"; {SUMMARIES[name].better} is better"), text
