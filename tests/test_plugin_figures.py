"""Plugins' own numbers and figures: a method's diagnostics (`Method.diagnostics`) and a metric's
figures travel from the plugin through the runner's checks into the row's folder, the
leaderboard and the HTML report; a rerun reuses a row only when its figures check out."""

import base64
import csv
import hashlib
import io
import json
import math
import shutil

import pytest
import torch
from conftest import Cli
from inprocess import as_plugin
from pydantic import BaseModel, ConfigDict
from test_names import one_line_error
from test_report import Page

import wmplat
from wmplat.plugins import registered

CAPTION = "Achieved loss against asked-for loss, R² <fit> & 20 prompts"
GRID_CAPTION = "Generated shapes beside their nearest training shapes"


def png(color: str, size: float = 1.0) -> bytes:
    """A real PNG drawn by matplotlib, as a plugin would draw it."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(size, size))
    fig.add_subplot().imshow([[0, 1], [1, 0]], cmap="gray" if color == "gray" else "viridis")
    return wmplat.Figure.from_matplotlib("x", "x", fig).png


class GaugeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bad: str | None = None       # which broken return diagnostics() gives (BAD_DIAGNOSTICS)


def good_diagnostics() -> wmplat.Diagnostics:
    return wmplat.Diagnostics(summary={"prompt_r2": 0.875, "prompt_slope": None},
                              figures=[wmplat.Figure("alignment", CAPTION, png("viridis"))])


def figure(name="alignment", caption=CAPTION, data=None) -> wmplat.Figure:
    return wmplat.Figure(name, caption, png("viridis") if data is None else data)


BAD_DIAGNOSTICS = {
    "a dict": (lambda: {"prompt_r2": 0.5},
               "returned dict from diagnostics(), expected wmplat.Diagnostics or None"),
    "a bad name": (lambda: wmplat.Diagnostics(summary={"r 2": 0.5}),
                   "returned diagnostic 'r 2', which is not a valid name: use letters"),
    "nan": (lambda: wmplat.Diagnostics(summary={"prompt_r2": math.nan}),
            "returned diagnostic 'prompt_r2' = nan; expected a finite number or None"),
    "a bool": (lambda: wmplat.Diagnostics(summary={"prompt_r2": True}),
               "returned diagnostic 'prompt_r2' = True; expected a finite number or None"),
    "a statistic's name": (lambda: wmplat.Diagnostics(summary={"replica_rate": 0.5}),
                           "returned diagnostic 'replica_rate', a name wmplat's statistics "
                           "reports; name it otherwise"),
    "a metric's name": (lambda: wmplat.Diagnostics(summary={"accuracy_mean": 0.5}),
                        "returned diagnostic 'accuracy_mean', a name metric 'accuracy' reports"),
    "a schema field": (lambda: wmplat.Diagnostics(summary={"seed": 1.0}),
                       "returned diagnostic 'seed', a name the result schema reports"),
    "not a Figure": (lambda: wmplat.Diagnostics(figures=[png("viridis")]),
                     "returned a figure of type bytes; expected wmplat.Figure(name, caption, "
                     "png)"),
    "figures not a list": (lambda: wmplat.Diagnostics(figures=figure()),
                           "returned figures of type Figure; expected a list of wmplat.Figure"),
    "a path as figure name": (lambda: wmplat.Diagnostics(figures=[figure(name="../x")]),
                              "returned a figure named '../x', which is not a valid name"),
    "not PNG": (lambda: wmplat.Diagnostics(figures=[figure(data=b"GIF89a...")]),
                "returned figure 'alignment' whose png is not a PNG image (9 bytes without the "
                "PNG signature)"),
    "too large": (lambda: wmplat.Diagnostics(figures=[figure(
        data=b"\x89PNG\r\n\x1a\n" + bytes(5 * 2**20))]),
        "returned figure 'alignment' of 5.0 MB, over the limit of 5 MB per figure"),
    "an empty caption": (lambda: wmplat.Diagnostics(figures=[figure(caption=" ")]),
                         "returned figure 'alignment' with caption ' '; expected a non-empty "
                         "str"),
    "two figures of one name": (lambda: wmplat.Diagnostics(figures=[
        figure(), figure(name="Alignment")]),
        "returned two figures named 'alignment' and 'Alignment'; a row's figure names must "
        "differ (ignoring case)"),
    "a metric's figure name": (lambda: wmplat.Diagnostics(figures=[figure(name="grid")]),
                               "error: metric 'shape-grid' ("),
    "raising": (lambda: 1 / 0, "failed: ZeroDivisionError: division by zero"),
}


class Gauge(wmplat.Method):
    """Jittered training checkpoints, and how well it 'follows its prompts'."""

    name = "gauge"
    Config = GaugeConfig

    def __init__(self, bad: str | None = None):
        self.bad = bad

    def fit(self, zoo, seed):
        self.train = zoo.train_weights()

    def sample(self, n, seed):
        g = wmplat.random_generator(seed)
        pick = torch.randint(len(self.train), (n,), generator=g)
        return self.train[pick] + 0.01 * torch.randn(n, self.train.shape[1], generator=g)

    def diagnostics(self, seed):
        return good_diagnostics() if self.bad is None else BAD_DIAGNOSTICS[self.bad][0]()


class ShapeGrid(wmplat.Metric):
    """A figure for every row, and a number."""

    name = "shape-grid"
    summary = ("grid_spread",)

    def compute(self, ctx):
        return wmplat.MetricValues(summary={"grid_spread": 0.25},
                                   figures=[wmplat.Figure("grid", GRID_CAPTION, png("gray"))])


class BrokenGrid(wmplat.Metric):
    name = "broken-grid"
    summary = ("broken_spread",)

    def compute(self, ctx):
        return wmplat.MetricValues(summary={"broken_spread": 0.0},
                                   figures=[wmplat.Figure("grid", "a grid", b"not a png")])


GAUGE = as_plugin("register_methods", Gauge)
GRID = as_plugin("register_metrics", ShapeGrid)
BROKEN_GRID = as_plugin("register_metrics", BrokenGrid)
ARGS = ("evaluate", "--method", "gauge", "--samples", "6")
QUIET = {"WMPLAT_QUIET": "1"}


def row_count(cwd) -> int:
    return len(list((cwd / "wmplat-results").rglob("result.json")))


def gauge_folder(cwd):
    [folder] = (cwd / "wmplat-results").glob("*/gauge/*-seed0-n6")
    return folder


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, default_zoo):
    """One evaluation of gauge with the shape-grid metric installed."""
    folder = tmp_path_factory.mktemp("figures")
    with registered(GAUGE, GRID):
        proc = Cli(folder)(*ARGS)
    return folder, proc


def copy_of(evaluated, cli):
    shutil.copytree(evaluated[0] / "wmplat-results", cli.cwd / "wmplat-results")


def test_diagnostics_are_a_stage_of_their_own_and_land_in_the_row(evaluated):
    folder, proc = evaluated
    assert "  gauge: sample\n  gauge: diagnostics\n  gauge: metric " in proc.stderr
    assert "noise(sigma=0.1): diagnostics" not in proc.stderr    # a baseline has none
    row = json.loads((gauge_folder(folder) / "result.json").read_text())
    assert row["metrics"]["prompt_r2"] == 0.875 and row["metrics"]["prompt_slope"] is None
    assert row["metrics"]["grid_spread"] == 0.25


def test_the_figures_are_files_of_the_row_listed_with_their_hash(evaluated):
    folder, _ = evaluated
    gauge = gauge_folder(folder)
    assert sorted(p.name for p in (gauge / "figures").iterdir()) == ["alignment.png", "grid.png"]
    index = json.loads((gauge / "figures.json").read_text())
    assert index["schema_version"] == 1
    assert index["figures"] == [
        {"name": "grid", "caption": GRID_CAPTION, "kind": "metric", "producer": "shape-grid",
         "sha256": hashlib.sha256(png("gray")).hexdigest()},
        {"name": "alignment", "caption": CAPTION, "kind": "method", "producer": "gauge",
         "sha256": hashlib.sha256(png("viridis")).hexdigest()}]
    assert (gauge / "figures" / "alignment.png").read_bytes() == png("viridis")
    # the metric runs on every row: baselines and references have its figure, and only it
    others = [f for f in (folder / "wmplat-results").rglob("figures.json") if f.parent != gauge]
    assert len(others) >= 8
    for path in others:
        assert [f["name"] for f in json.loads(path.read_text())["figures"]] == ["grid"]


def test_diagnostics_are_leaderboard_columns_in_every_format(evaluated):
    cli = Cli(evaluated[0])
    [row] = [r for r in cli.json("leaderboard", "--format", "json") if r["method"] == "gauge"]
    assert row["metrics"]["prompt_r2"] == 0.875
    table = list(csv.DictReader(io.StringIO(cli("leaderboard", "--format", "csv").stdout)))
    [gauge] = [r for r in table if r["method"] == "gauge"]
    assert gauge["prompt_r2"] == "0.875" and gauge["grid_spread"] == "0.25"
    assert all(r["prompt_r2"] == "" for r in table if r["method"] != "gauge")
    markdown = cli("leaderboard", "--format", "markdown").stdout
    header = next(line for line in markdown.splitlines() if line.startswith("| method"))
    assert "prompt_r2" in header and "grid_spread" in header
    [line] = [line for line in markdown.splitlines() if line.startswith("| gauge ")]
    assert "0.875" in line


def test_the_report_shows_each_row_s_figures_with_its_label_and_caption(evaluated):
    cli = Cli(evaluated[0])
    path = evaluated[0] / "report.html"
    cli("leaderboard", "--format", "html", "--output", str(path))
    text = path.read_text(encoding="utf-8")
    page = Page(text)
    plugin = [k for k in page.figures if k.startswith("figure-")]
    assert len(plugin) == len(list((evaluated[0] / "wmplat-results").rglob("figures.json"))) + 1
    built_in = ("scatter-digits-mlp", "min-l2-digits-mlp", "heatmap-digits-mlp")
    assert list(page.figures)[:3] == list(built_in)      # after the built-in figures
    images = {base64.b64decode(page.figures[k][0].partition(",")[2]) for k in plugin}
    assert images == {png("viridis"), png("gray")}
    # the caption is escaped text after the row's label; numbers continue the built-in ones,
    # a row's figures in the order its metrics and then the method returned them
    assert f"<b>Figure 4.</b> <b>gauge</b>: {GRID_CAPTION}" in text
    assert ("<b>Figure 5.</b> <b>gauge</b>: Achieved loss against asked-for loss, R² &lt;fit&gt; "
            '&amp; 20 prompts <span class="by">(alignment, by method gauge)</span>') in text
    assert "<b>fresh</b>: " + GRID_CAPTION in text
    assert text.count('data-kind="plugin"') == len(plugin)


def test_a_rerun_reuses_every_row_with_its_figures(evaluated, cli):
    copy_of(evaluated, cli)
    before = {p: p.read_bytes() for p in (cli.cwd / "wmplat-results").rglob("*.png")}
    with registered(GAUGE, GRID):
        proc = cli(*ARGS)
    assert "recomputing" not in proc.stderr and "diagnostics" not in proc.stderr
    assert proc.stderr.count("  reusing ") == row_count(cli.cwd)
    assert {p: p.read_bytes() for p in (cli.cwd / "wmplat-results").rglob("*.png")} == before


def test_a_row_with_figures_is_replaced_whole_by_force(evaluated, cli):
    copy_of(evaluated, cli)
    with registered(GAUGE):       # without the metric: its figures and number go
        cli(*ARGS, "--force")
    gauge = gauge_folder(cli.cwd)
    assert sorted(p.name for p in (gauge / "figures").iterdir()) == ["alignment.png"]
    assert "grid_spread" not in json.loads((gauge / "result.json").read_text())["metrics"]
    assert not list((cli.cwd / "wmplat-results").rglob("grid.png"))


@pytest.mark.parametrize("damage", ["changed", "missing", "unlisted", "index missing",
                                    "index garbage"])
def test_a_row_whose_figures_do_not_check_out_is_recomputed(evaluated, cli, damage):
    copy_of(evaluated, cli)
    gauge = gauge_folder(cli.cwd)
    figure_file = gauge / "figures" / "alignment.png"
    if damage == "changed":
        figure_file.write_bytes(png("gray"))
    elif damage == "missing":
        figure_file.unlink()
    elif damage == "unlisted":
        (gauge / "figures" / "extra.png").write_bytes(png("gray"))
    elif damage == "index missing":
        (gauge / "figures.json").unlink()
    else:
        (gauge / "figures.json").write_text("{not json")
    with registered(GAUGE, GRID):
        proc = cli(*ARGS)
    expected = {"changed": f"{figure_file}: the file does not match the sha256 in figures.json",
                "missing": f"{figure_file}: cannot read figure",
                "unlisted": "['extra.png'] are not listed in figures.json",
                "index missing": f"{gauge / 'figures'}: figures without their index",
                "index garbage": f"{gauge / 'figures.json'}: cannot read the figures' index"}
    note = next(line for line in proc.stderr.splitlines() if "does not check out" in line)
    assert expected[damage].replace(str(cli.cwd) + "/", "") in note
    assert proc.stderr.count("  reusing ") == row_count(cli.cwd) - 1
    assert figure_file.read_bytes() == png("viridis")
    assert sorted(p.name for p in (gauge / "figures").iterdir()) == ["alignment.png", "grid.png"]


@pytest.mark.parametrize("bad", sorted(BAD_DIAGNOSTICS))
def test_a_bad_diagnostics_return_is_one_line_naming_the_method(cli, default_zoo, bad):
    with registered(GAUGE, GRID):
        proc = cli(*ARGS, "--set", f"bad={bad}", ok=False, env=QUIET)
    line = one_line_error(proc)
    assert line.startswith("error: method 'gauge' (") or bad == "a metric's figure name"
    assert BAD_DIAGNOSTICS[bad][1] in line, line
    assert not list((cli.cwd / "wmplat-results").rglob("result.json"))   # nothing stored


def test_a_metric_figure_and_a_method_figure_of_one_name_are_one_line_naming_both(cli,
                                                                                  default_zoo):
    with registered(GAUGE, GRID):
        proc = cli(*ARGS, "--set", "bad=a metric's figure name", ok=False, env=QUIET)
    line = one_line_error(proc)
    assert line.startswith("error: metric 'shape-grid' (") and " and method 'gauge' (" in line
    assert line.endswith("both return a figure named 'grid'; a row's figure names must differ "
                         "(ignoring case): rename one")


def test_a_metric_returning_a_bad_figure_is_one_line(cli, default_zoo):
    with registered(GAUGE, BROKEN_GRID):
        proc = cli(*ARGS, ok=False, env=QUIET)
    line = one_line_error(proc)
    assert line.startswith("error: metric 'broken-grid' (") and "returned figure 'grid' whose " \
        "png is not a PNG image (9 bytes without the PNG signature)" in line
