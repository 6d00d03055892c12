"""The HTML report: the leaderboard and, per zoo, the paper's figures (accuracy against max
similarity, histograms of min L2 to the training set, parameter heatmaps) in one self-contained
page: images embedded as PNG, no script, no external asset.

After them, the figures plugins stored with each row (a metric's, a method's diagnostics), with
the row's label and the plugin's caption.

Rendered from stored results only (rows, per-sample values, previews, plugin figures), with the
leaderboard's rows, order and columns; the same results give the same bytes.
"""

import base64
import html
import itertools
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from .. import __version__
from ..engine.atomic import write_text_atomic
from ..errors import ResultError
from ..evaluation.plugin_figures import StoredFigure, read_figures
from ..evaluation.statistics import CATEGORIES
from ..evaluation.store import (
    PER_SAMPLE,
    PREVIEW,
    read_per_sample,
    read_preview,
    read_results_with_folders,
)
from ..measures import COLUMNS, SUMMARIES, SummaryValue
from ..schema import Result
from ..task import ClassifierTask
from . import figures
from .figures import Preview, Series
from .leaderboard import (
    cells,
    columns,
    dominated_by,
    header,
    invalid_notices,
    label,
    sort_rows,
    title,
)

HEATMAP_BASELINES = 3       # at most this many baselines beside the methods in the heatmap
TEXT_COLUMNS = {"method", "kind", "verdict", "dominated by"}
DOMINATED_BY = ("baselines at least as accurate and at least as far from the training set, in "
                "function and in weight space")     # the legend's entry for that column


def write_report(results_dir: Path, zoo: str | None, output: Path) -> Path:
    """Render the results under `results_dir` (optionally one zoo's) into `output`."""
    write_text_atomic(output, render_report(read_results_with_folders(results_dir, zoo)))
    return output


def render_report(results: Sequence[tuple[Result, Path]]) -> str:
    folders = {id(row): folder for row, folder in results}
    rows = sort_rows([row for row, _ in results])
    numbers = itertools.count(1)
    sections = [_zoo_section([r for r in rows if r.zoo == zoo], folders, numbers)
                for zoo in dict.fromkeys(r.zoo for r in rows)]
    return PAGE.format(css=CSS, intro=INTRO.format(legend=legend()), sections="\n".join(sections),
                       footer=_footer(rows))


# --- one zoo -------------------------------------------------------------------------------

def _zoo_section(rows: list[Result], folders: dict[int, Path], numbers: Iterator[int]) -> str:
    zoo = rows[0].zoo
    names = _names(rows)
    styles = figures.styles([(r.kind, r.method) for r in rows])
    series = [Series(n, r.kind, r.method, s, _values(folders[id(r)]))
              for r, n, s in zip(rows, names, styles, strict=True)]
    heading = "Zoo " + title(rows).removeprefix("zoo ")
    parts = [f'<section id="zoo-{_slug(zoo)}">', f"<h2>{_e(heading)}</h2>",
             *_invalid_html(rows), _table(rows, names, styles), _reading_guide(rows)]
    if any("accuracy" in s.values and "max_similarity" in s.values for s in series):
        parts.append(_scatter_figure(zoo, series, next(numbers), task_words(rows[0].task)))
    if any("min_l2" in s.values for s in series):
        parts.append(_histogram_figure(zoo, series, next(numbers)))
    if previews := _previews(rows, series, folders):
        parts.append(_heatmap_figure(zoo, previews, next(numbers)))
    for row, name in zip(rows, names, strict=True):
        parts += [_plugin_figure_html(zoo, name, f, next(numbers))
                  for f in read_figures(folders[id(row)])]
    if missing := [n for n, s in zip(names, series, strict=True) if not s.values]:
        parts.append(f'<p class="key">No per-sample values stored for {_e(", ".join(missing))}'
                     "; the figures leave them out.</p>")
    parts.append("</section>")
    return "\n".join(parts)


def _names(rows: Sequence[Result]) -> list[str]:
    """The leaderboard label, with seed and sample count where two rows share a label."""
    counts = Counter(label(r) for r in rows)
    return [label(r) if counts[label(r)] == 1 else f"{label(r)} [seed {r.seed}, n {r.n_samples}]"
            for r in rows]


def _values(folder: Path) -> dict[str, np.ndarray]:
    if not (folder / PER_SAMPLE).is_file():
        return {}
    try:
        tensors = read_per_sample(folder)
    except Exception as exc:    # safetensors raises its own error types
        raise ResultError(f"{folder / PER_SAMPLE}: cannot read per-sample values ({exc})") from None
    return {name: t.double().numpy() for name, t in tensors.items()}


def _previews(rows: list[Result], series: list[Series],
              folders: dict[int, Path]) -> list[Preview]:
    chosen = {id(r) for r in _heatmap_rows(rows)}
    previews = []
    for row, s in zip(rows, series, strict=True):
        if id(row) in chosen and (preview := _preview(folders[id(row)], s)) is not None:
            previews.append(preview)
    return previews


def _heatmap_rows(rows: list[Result]) -> list[Result]:
    """The method rows, the baselines that dominate one of them (else the first baselines,
    when there is no method), and the heldout runs for what a new model looks like."""
    methods = [r for r in rows if r.kind == "method"]
    dominating = {name for m in methods for name in dominated_by(m, rows)}
    baselines = [r for r in rows if r.kind == "baseline"
                 and (label(r) in dominating or not methods)][:HEATMAP_BASELINES]
    return [*methods, *baselines, *(r for r in rows if r.method == "fresh")]


def _preview(folder: Path, series: Series) -> Preview | None:
    if not (folder / PREVIEW).is_file():
        return None
    try:
        extract = read_preview(folder)
    except Exception as exc:    # safetensors raises its own error types
        raise ResultError(f"{folder / PREVIEW}: cannot read the preview ({exc})") from None
    codes = series.values.get("category", np.zeros(0))
    k = len(extract["samples"])
    categories = [CATEGORIES[int(c)] if 0 <= c < len(CATEGORIES) else "" for c in codes[:k]]
    return Preview(series.name, extract["samples"].double().numpy(),
                   extract["neighbours"].double().numpy(),
                   extract["neighbour_distance"].double().numpy(), categories)


# --- the table and the text ----------------------------------------------------------------

def _table(rows: list[Result], names: list[str], styles: list[figures.Style]) -> str:
    cols = columns(rows)
    head = header(cols)
    lines = ["<table>", "<thead><tr>" + "".join(
        f'<th class="{_align(h)}">{_e(h)}</th>' for h in head) + "</tr></thead>", "<tbody>"]
    for row, name, style in zip(rows, names, styles, strict=True):
        values = cells(row, rows, cols)
        values[0] = name
        tds = [f'<td class="{_align(h)}">{_cell_html(v)}</td>'
               for h, v in zip(head, values, strict=True)]
        tds[0] = (f'<td class="text"><span class="swatch" style="background:{style.color}">'
                  f"</span>{_e(name)}</td>")
        tds[head.index("verdict")] = (f'<td class="text verdict {row.verdict or "none"}">'
                                      f"{_e(row.verdict or '–')}</td>")
        lines.append(f'<tr class="{row.kind}">' + "".join(tds) + "</tr>")
    return "\n".join([*lines, "</tbody>", "</table>"])


def _invalid_html(rows: list[Result]) -> list[str]:
    return [f'<p class="invalid" role="alert">{_e(n)}</p>' for n in invalid_notices(rows)]


def _cell_html(value: str) -> str:
    """A cell's text; an interval after a value ("0.500 [0.355, 0.639]") set in small type."""
    number, sep, interval = value.partition(" [")
    if not sep:
        return _e(value)
    return f'{_e(number)} <span class="ci">[{_e(interval)}</span>'


def _align(column: str) -> str:
    return "text" if column in TEXT_COLUMNS else "num"


def legend() -> str:
    """What each column of the table means, from the declarations (wmplat/measures.py)."""
    entries = [(header, _meaning(SUMMARIES[name])) for header, name in COLUMNS]
    entries.append(("dominated by", DOMINATED_BY))
    return "\n".join(['<dl class="key">', *(f"<dt>{_e(h)}</dt><dd>{_e(m)}</dd>"
                                            for h, m in entries), "</dl>"])


def _meaning(value: SummaryValue) -> str:
    return f"{value.meaning}; {value.better} is better" if value.better else value.meaning


def _reading_guide(rows: list[Result]) -> str:
    n = {r.method: r.n_samples for r in rows if r.kind == "reference"}
    parts = ["Every row scores a set of models against all checkpoints of the zoo's training "
             "runs, the only models a method may see."]
    if "fresh" in n:
        parts.append(f"<b>fresh</b> is the final checkpoint of each of the {n['fresh']} heldout "
                     "runs, trained the same way but never seen by any method: what a genuinely "
                     "new model looks like, and the null every statistic is judged against.")
    if "train" in n:
        parts.append(f"<b>train</b> is the final checkpoint of each of the {n['train']} training "
                     "runs, compared with the other runs' checkpoints.")
    if any(r.method == "replica" for r in rows):
        parts.append("<b>replica</b> returns exact copies of training checkpoints: the extreme "
                     "of memorization.")
    parts.append("The other baselines need no learning (noise added to a checkpoint, averages "
                 "and interpolations of aligned checkpoints, a per-parameter Gaussian). A method "
                 "memorizes when it sits with replica and small noise rather than with fresh.")
    return f'<p class="guide">{" ".join(parts)}</p>'


def _footer(rows: list[Result]) -> str:
    environments = Counter((r.environment.wmplat, r.environment.torch, r.environment.python)
                           for r in rows)
    listed = "; ".join(f"wmplat {w}, torch {t}, Python {p} ({n} row{'s' * (n != 1)})"
                       for (w, t, p), n in sorted(environments.items()))
    return (f"Generated by wmplat {_e(__version__)} from {len(rows)} stored results. "
            f"Rows computed with {_e(listed or 'nothing')}.")


# --- figures -------------------------------------------------------------------------------

def task_words(task: str) -> tuple[str, str]:
    """What the task's quality and similarity measure, in words (`Task.quality_name`,
    `similarity_name`), if the task is installed; a classifier's otherwise (a zoo of a task
    file is one)."""
    from ..plugins import load_plugins

    entry = next((e for e in load_plugins().datasets.entries() if e.name == task), None)
    cls = entry.cls if entry is not None else ClassifierTask
    return cls.quality_name, cls.similarity_name


def _scatter_figure(zoo: str, series: list[Series], number: int,
                    words: tuple[str, str]) -> str:
    quality, similarity = words
    fig, left_out = figures.scatter(series, quality, similarity)
    if (quality, similarity) == (ClassifierTask.quality_name, ClassifierTask.similarity_name):
        meaning = ("Max similarity is the highest IoU between the model's set of misclassified "
                   "test examples and that of any training checkpoint; 1 means it errs exactly "
                   "like one of them.")
    else:
        meaning = (f"Max similarity is the highest similarity ({similarity}) between what the "
                   "model does and what any training checkpoint does; 1 means it behaves "
                   "exactly like one of them.")
    caption = (f"{quality[:1].upper()}{quality[1:]} against max similarity: one point per "
               f"model. {meaning} Training checkpoints (train) and heldout runs (fresh) show "
               "where independently trained models fall; memorized samples crowd the right "
               "edge. Methods are drawn on top, so where points coincide they hide the rows "
               "beneath. " + left_out)
    return _figure_html("scatter", zoo, fig, number, caption)


def _histogram_figure(zoo: str, series: list[Series], number: int) -> str:
    reference = next((s for s in series if s.method == "fresh"), None)
    fig = figures.min_l2_histograms(series, reference)
    caption = (f"Min L2 distance in weight space from each model to the nearest training "
               f"checkpoint, without alignment as in the paper: % of each row's models in "
               f"{figures.BINS} bins shared by all panels. "
               + ("The black outline repeats the heldout runs (fresh) in every panel. "
                  if reference else "")
               + "Copies of training checkpoints sit at 0; independently trained models sit "
               "far from every checkpoint.")
    return _figure_html("min-l2", zoo, fig, number, caption)


def _heatmap_figure(zoo: str, previews: list[Preview], number: int) -> str:
    fig = figures.heatmaps(previews)
    caption = ("Parameter heatmaps: the 64 parameters that vary most across the training "
               "checkpoints (columns, in flat order) of each row's first samples (above the "
               "white line), and the same parameters of each sample's 3 nearest training "
               "checkpoints after aligning hidden units where the task declares permutation "
               "symmetry (below), on one color scale. d is the aligned L2 distance over all "
               "parameters; beside each sample, its category. "
               "Matching columns mean a copy. Shown: the methods, the baselines that dominate "
               "them (or the first baselines, without a method) and the heldout runs: "
               + ", ".join(p.name for p in previews) + ".")
    return _figure_html("heatmap", zoo, fig, number, caption)


def _figure_html(kind: str, zoo: str, fig, number: int, caption: str) -> str:
    data = base64.b64encode(figures.png(fig)).decode("ascii")
    return (f'<figure id="{kind}-{_slug(zoo)}" data-kind="{kind}" data-zoo="{_e(zoo)}">\n'
            f'<img src="data:image/png;base64,{data}" width="{figures.css_width(fig)}" '
            f'alt="{_e(kind)} figure of zoo {_e(zoo)}">\n'
            f"<figcaption><b>Figure {number}.</b> {_e(caption.strip())}</figcaption>\n"
            "</figure>")


def _plugin_figure_html(zoo: str, row: str, figure: StoredFigure, number: int) -> str:
    data = base64.b64encode(figure.png).decode("ascii")
    return (f'<figure id="figure-{number}" data-kind="plugin" data-zoo="{_e(zoo)}" '
            f'data-row="{_e(row)}" data-name="{_e(figure.name)}">\n'
            f'<img src="data:image/png;base64,{data}" '
            f'alt="{_e(figure.name)}, by {figure.kind} {_e(figure.producer)}, of {_e(row)}">\n'
            f"<figcaption><b>Figure {number}.</b> <b>{_e(row)}</b>: {_e(figure.caption.strip())}"
            f' <span class="by">({_e(figure.name)}, by {figure.kind} '
            f"{_e(figure.producer)})</span></figcaption>\n</figure>")


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "zoo"


def _e(text: str) -> str:
    return html.escape(str(text), quote=True)


INTRO = """<p>Does a generative model of neural-network weights produce <em>new</em> good
weights, or replicas and simple combinations of the checkpoints it was trained on? Following Zeng
et al. (2025), <cite>Generative Modeling of Weights: Generalization or Memorization?</cite>
(arXiv 2506.07998), each method's samples are scored beside baselines that need no learning and
beside freshly trained models.</p>
{legend}
<p class="key"><b>Verdicts</b> (the most common per-sample category, each judged against the
heldout runs): <span class="verdict novel">novel</span> as far from the training set as a fresh
run and as good; <span class="verdict interpolates">interpolates</span> close to a combination of
training checkpoints; <span class="verdict memorizes">memorizes</span> close to one checkpoint, or
errs like one; <span class="verdict degraded">degraded</span> worse than the heldout runs;
<span class="verdict no-power">no-power</span> the zoo has too few heldout runs for any test to
flag a sample (docs/metrics.md); <span class="verdict invalid">invalid</span> some samples copy
heldout runs, which no method may see: the row is no result (docs/trust.md).</p>"""

CSS = """
body { margin: 0; background: #fff; color: #1a1a1a;
  font: 15px/1.5 "Charter", "Georgia", "DejaVu Serif", serif; }
main { max-width: 1120px; margin: 0 auto; padding: 28px 24px 40px; }
h1 { font-size: 26px; margin: 0 0 8px; font-weight: 600; }
h2 { font-size: 20px; margin: 36px 0 12px; padding-top: 12px; border-top: 1px solid #ccc;
  font-weight: 600; }
p { margin: 8px 0; }
.key { font-size: 13.5px; color: #333; }
dl.key { display: grid; grid-template-columns: 8.5em 1fr 8.5em 1fr;
  gap: 2px 12px; margin: 10px 0; }
dl.key dt { font-weight: 600; }
dl.key dd { margin: 0; }
table { border-collapse: collapse; margin: 14px 0 6px; width: 100%;
  font: 12px/1.35 "Helvetica Neue", Arial, "DejaVu Sans", sans-serif; }
thead th { border-top: 1.5px solid #222; border-bottom: 1px solid #222; padding: 5px 4px;
  font-weight: 600; vertical-align: bottom; }
tbody td { padding: 3px 4px; border-bottom: 1px solid #eee; }
tbody tr:last-child td { border-bottom: 1.5px solid #222; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.text, th.text { text-align: left; }
.ci { color: #666; font-size: 11px; }
tbody td:first-child { white-space: nowrap; }
tr.method td:first-child { font-weight: 600; }
tr.reference td { background: #f6f6f6; }
.swatch { display: inline-block; width: 9px; height: 9px; margin-right: 6px;
  border: 1px solid rgba(0,0,0,.35); vertical-align: baseline; }
.verdict { font-family: "Helvetica Neue", Arial, "DejaVu Sans", sans-serif; font-size: 12px;
  padding: 1px 6px; border-radius: 3px; }
td.verdict { border-radius: 0; }
.verdict.novel { background: #d9f0d3; color: #1b5e20; }
.verdict.interpolates { background: #fff1c7; color: #7a5600; }
.verdict.memorizes { background: #f9d4d0; color: #8e1b12; }
.verdict.degraded { background: #e3e3e3; color: #444; }
.verdict.no-power { background: #fff; color: #444; border: 1px dashed #888; }
.verdict.invalid { background: #8e1b12; color: #fff; font-weight: bold; }
p.invalid { background: #8e1b12; color: #fff; font-weight: bold; padding: 8px 12px; }
figure { margin: 26px 0 10px; }
figure img { display: block; max-width: 100%; height: auto; margin: 0 auto; }
figcaption { font-size: 13.5px; color: #333; margin-top: 6px; }
figcaption .by { color: #666; font-size: 12px; }
footer { margin-top: 36px; padding-top: 10px; border-top: 1px solid #ccc; font-size: 12.5px;
  color: #555; }
"""

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>wmplat leaderboard</title>
<style>{css}</style>
</head>
<body>
<main>
<h1>Generalization or memorization: wmplat leaderboard</h1>
{intro}
{sections}
<footer>{footer}</footer>
</main>
</body>
</html>
"""
