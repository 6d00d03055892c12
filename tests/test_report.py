"""`wmplat leaderboard --format html`: a self-contained page with the table and the figures."""

import base64
from html.parser import HTMLParser

import pytest
from conftest import Cli
from inprocess import as_plugin

from wmplat.plugins import registered
from wmplat.testing import SpecTask, tiny_zoo

KINDS = ("scatter", "min-l2", "heatmap")


class Page(HTMLParser):
    """What a reader of the page sees: table cells, figures (by id) and their images."""

    def __init__(self, text: str):
        super().__init__()
        self.cells: list[str] = []
        self.figures: dict[str, list[str]] = {}
        self.sources: list[str] = []
        self._cell: list[str] | None = None
        self._figure: str | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "td":
            self._cell = []
        elif tag == "figure":
            self._figure = attrs["id"]
            self.figures[self._figure] = []
        elif tag == "img":
            self.sources.append(attrs["src"])
            if self._figure:
                self.figures[self._figure].append(attrs["src"])
        for name in ("src", "href"):
            if name in attrs and tag != "img":
                self.sources.append(attrs[name])

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.cells.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "figure":
            self._figure = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture(scope="module")
def results(tmp_path_factory, default_zoo):
    folder = tmp_path_factory.mktemp("report")
    Cli(folder)("evaluate", "--method", "copycat", "--samples", "8")
    return folder


@pytest.fixture(scope="module")
def page(results):
    path = results / "pages" / "report.html"
    path.parent.mkdir()
    proc = Cli(results)("leaderboard", "--format", "html", "--output", str(path))
    assert proc.stdout.strip() == str(path)
    return path


def _labels(results) -> list[str]:
    """The first column of the Markdown leaderboard: every row's label."""
    markdown = Cli(results)("leaderboard", "--format", "markdown").stdout
    return [line.split(" | ")[0].removeprefix("| ") for line in markdown.splitlines()
            if line.startswith("| ")][1:]


def test_the_page_holds_every_row_of_the_table(results, page):
    labels = _labels(results)
    cells = Page(page.read_text(encoding="utf-8")).cells
    assert "copycat" in labels and "fresh" in labels and "train" in labels
    for name in labels:
        assert name in cells, name
    assert "memorizes" in cells            # the verdict column


def test_the_page_has_one_figure_of_each_kind_per_zoo(page):
    figures = Page(page.read_text(encoding="utf-8")).figures
    assert sorted(figures) == sorted(f"{kind}-digits-mlp" for kind in KINDS)
    for sources in figures.values():
        [image] = sources
        header, _, data = image.partition(",")
        assert header == "data:image/png;base64"
        assert base64.b64decode(data).startswith(b"\x89PNG\r\n\x1a\n")


def test_the_page_is_self_contained(page):
    text = page.read_text(encoding="utf-8")
    parsed = Page(text)
    assert parsed.sources and all(s.startswith("data:") for s in parsed.sources)
    assert "<script" not in text and 'src="http' not in text and "<link" not in text


def test_the_same_results_give_the_same_page_in_the_default_file(results, page):
    proc = Cli(results)("leaderboard", "--format", "html")
    assert proc.stdout.strip() == "leaderboard.html"
    assert (results / "leaderboard.html").read_bytes() == page.read_bytes()


def test_a_missing_results_folder_is_a_clear_error(cli, tmp_path):
    proc = cli("leaderboard", "--format", "html", "--results-dir", str(tmp_path / "nowhere"),
               ok=False)
    assert proc.returncode == 1
    assert f"no results under {tmp_path / 'nowhere'}" in proc.stderr
    assert not (tmp_path / "leaderboard.html").exists()


def test_output_is_only_for_html(cli, results):
    proc = cli("leaderboard", "--results-dir", str(results / "wmplat-results"),
               "--output", "x.md", ok=False)
    assert proc.returncode == 1 and "--output is for --format html" in proc.stderr


class NamedTask(SpecTask):
    """The kit's task, saying what its quality and similarity measure, as a field task would."""

    name = "named-task"
    quality_name = "minus distance"
    similarity_name = "closeness of shapes"


def _scatter_caption(page_text: str) -> str:
    start = page_text.index('data-kind="scatter"')
    return page_text[page_text.index("<figcaption>", start):page_text.index("</figcaption>",
                                                                           start)]


def test_the_scatter_says_what_the_tasks_quality_and_similarity_measure(tmp_path, page):
    tiny_zoo(NamedTask(), tmp_path / "zoo", runs=6, heldout=3)
    plugin = as_plugin("register_datasets", NamedTask)
    with registered(plugin):
        Cli(tmp_path)("evaluate", "--method", "replica", "--zoo", str(tmp_path / "zoo"),
                      "--samples", "4")
        Cli(tmp_path)("leaderboard", "--format", "html", "--output", str(tmp_path / "p.html"))
    caption = _scatter_caption((tmp_path / "p.html").read_text(encoding="utf-8"))
    assert "Minus distance against max similarity" in caption
    assert "(closeness of shapes)" in caption and "IoU" not in caption
    classifier = _scatter_caption(page.read_text(encoding="utf-8"))
    assert "Accuracy against max similarity" in classifier and "IoU" in classifier
