"""Plugins' figures (`wmplat.Figure`, from metrics and from `Method.diagnostics`): checked as
the runner receives them, stored with their row as `figures/NAME.png` beside `figures.json`
(name, caption, producer and sha256 of each), and read back checked, as one unit with the row.

A row without figures has neither; a row folder with either has both, and every file listed
with its hash and nothing else in `figures/`.
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import PluginError, ResultError
from ..figure import Figure
from ..names import NAME_RULE, is_name
from ..schema import FIGURE_CAPTION_MAX, FigureIndex, FigureRecord, read_json_model

FIGURES_DIR = "figures"
FIGURES_INDEX = "figures.json"
FIGURE_BYTES_MAX = 5 * 2**20        # one figure's PNG; a report embeds every one
FIGURES_PER_ROW = 20
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class RowFigure:
    """A checked figure and who made it: `kind` is metric, method or baseline."""

    figure: Figure
    kind: str
    producer: str


@dataclass(frozen=True)
class StoredFigure:
    """A figure read back from a row's folder."""

    name: str
    caption: str
    kind: str
    producer: str
    png: bytes


def check_figures(figures: Any, who: str) -> list[Figure]:
    """`figures` as one producer returned them: a list of valid, distinctly named Figures;
    else a PluginError naming `who` and what is wrong."""
    if not isinstance(figures, list | tuple):
        raise PluginError(f"{who} returned figures of type {type(figures).__name__}; expected a "
                          "list of wmplat.Figure")
    seen: dict[str, str] = {}
    for figure in figures:
        check_figure(figure, who)
        if (key := figure.name.lower()) in seen:
            raise PluginError(f"{who} returned two figures named {seen[key]!r} and "
                              f"{figure.name!r}; a row's figure names must differ (ignoring "
                              "case): rename one")
        seen[key] = figure.name
    return list(figures)


def check_figure(figure: Any, who: str) -> None:
    if not isinstance(figure, Figure):
        raise PluginError(f"{who} returned a figure of type {type(figure).__name__}; expected "
                          "wmplat.Figure(name, caption, png)")
    if not is_name(figure.name):
        raise PluginError(f"{who} returned a figure named {figure.name!r}, which is not a valid "
                          f"name: {NAME_RULE}")
    caption = figure.caption
    if not isinstance(caption, str) or not caption.strip() or len(caption) > FIGURE_CAPTION_MAX:
        raise PluginError(f"{who} returned figure {figure.name!r} with caption {_short(caption)}"
                          f"; expected a non-empty str of at most {FIGURE_CAPTION_MAX} "
                          "characters saying what it shows")
    png = figure.png
    if not isinstance(png, bytes) or not png.startswith(PNG_SIGNATURE):
        what = f"{len(png)} bytes" if isinstance(png, bytes) else type(png).__name__
        raise PluginError(f"{who} returned figure {figure.name!r} whose png is not a PNG image "
                          f"({what} without the PNG signature); pass PNG bytes, e.g. "
                          "wmplat.Figure.from_matplotlib(name, caption, fig)")
    if len(png) > FIGURE_BYTES_MAX:
        raise PluginError(f"{who} returned figure {figure.name!r} of {len(png) / 2**20:.1f} MB, "
                          f"over the limit of {FIGURE_BYTES_MAX // 2**20} MB per figure; draw "
                          "it smaller or at a lower dpi")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}... ({len(value)} characters)"


def row_figures(produced: list[tuple[str, str, str, list[Figure]]]) -> list[RowFigure]:
    """One row's figures from each producer's checked list, given as (kind, producer, who,
    figures): names are the row's, so two producers may not share one (ignoring case)."""
    out: list[RowFigure] = []
    owner: dict[str, tuple[str, str]] = {}
    for kind, producer, who, figures in produced:
        for figure in figures:
            key = figure.name.lower()
            if key in owner:
                name, other = owner[key]
                raise PluginError(f"{other} and {who} both return a figure named "
                                  f"{figure.name!r}{'' if name == figure.name else f' / {name!r}'}"
                                  "; a row's figure names must differ (ignoring case): rename "
                                  "one")
            owner[key] = (figure.name, who)
            out.append(RowFigure(figure, kind, producer))
    if len(out) > FIGURES_PER_ROW:
        raise PluginError(f"the row's plugins returned {len(out)} figures, over the limit of "
                          f"{FIGURES_PER_ROW} per row: return fewer")
    return out


def write_figures(folder: Path, figures: list[RowFigure]) -> None:
    """Write `figures/NAME.png` and `figures.json` into `folder` (a row's temporary folder)."""
    if not figures:
        return
    (folder / FIGURES_DIR).mkdir()
    records = []
    for f in figures:
        (folder / FIGURES_DIR / f"{f.figure.name}.png").write_bytes(f.figure.png)
        records.append(FigureRecord(name=f.figure.name, caption=f.figure.caption, kind=f.kind,
                                    producer=f.producer,
                                    sha256=hashlib.sha256(f.figure.png).hexdigest()))
    index = FigureIndex(figures=records)
    (folder / FIGURES_INDEX).write_text(index.model_dump_json(indent=2) + "\n",
                                        encoding="utf-8")


def is_figures_folder(path: Path) -> bool:
    """Whether `path` holds nothing but figure files, so that wmplat may replace its row."""
    return path.is_dir() and not path.is_symlink() and all(
        p.suffix == ".png" and p.is_file() and not p.is_symlink() for p in path.iterdir())


def read_figures(folder: Path) -> list[StoredFigure]:
    """The figures of the row in `folder`, checked against `figures.json`: each listed file
    present with its hash, nothing unlisted. [] for a row without figures. Raises ResultError
    naming what does not check out."""
    index_path, files = folder / FIGURES_INDEX, folder / FIGURES_DIR
    if not index_path.exists():
        if files.exists():
            raise ResultError(f"{files}: figures without their index {FIGURES_INDEX}")
        return []
    index = _read_index(index_path)
    if not files.is_dir() or files.is_symlink():
        raise ResultError(f"{index_path} lists figures, but {files} is not a folder")
    listed = {f"{r.name}.png" for r in index.figures}
    if unlisted := sorted(p.name for p in files.iterdir() if p.name not in listed):
        raise ResultError(f"{files}: {unlisted} are not listed in {FIGURES_INDEX}")
    return [_read_figure(files, record) for record in index.figures]


def _read_index(path: Path) -> FigureIndex:
    return read_json_model(path, FigureIndex, "the figures' index", ResultError)


def _read_figure(files: Path, record: FigureRecord) -> StoredFigure:
    path = files / f"{record.name}.png"
    if path.is_symlink():
        raise ResultError(f"{path}: a link, not a figure file")
    try:
        png = path.read_bytes()
    except OSError as exc:
        raise ResultError(f"{path}: cannot read figure ({exc.strerror or exc})") from None
    if hashlib.sha256(png).hexdigest() != record.sha256:
        raise ResultError(f"{path}: the file does not match the sha256 in {FIGURES_INDEX}")
    return StoredFigure(record.name, record.caption, record.kind, record.producer, png)
