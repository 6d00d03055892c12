"""The report's figures, after the paper's: accuracy against max similarity, histograms of the
min L2 distance to the training set, and heatmaps of parameters beside their nearest training
checkpoints.

Drawn with matplotlib's Agg renderer through `Figure` (no pyplot, so no global figure state),
returned as PNG bytes without metadata, so the same values give the same bytes.
"""

import io
import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

SCREEN_DPI = 96             # CSS pixels per inch: the size the page shows a figure at
DPI = 2 * SCREEN_DPI        # pixels per inch of the PNG: sharp on high-density screens and print
WIDTH = 11.0                # inches: every figure spans the page's column
BINS = 15                   # the paper's histogram
TRAIN_COLOR, FRESH_COLOR = "#1f77b4", "#111111"
METHOD_COLORS = ("#d62728", "#9467bd", "#e7298a", "#1b9e77")
BASELINE_COLORS = ("#ff7f0e", "#2ca02c", "#17becf", "#bcbd22", "#8c564b", "#e377c2", "#7f7f7f",
                   "#393b79", "#ad494a", "#98df8a")
BASELINE_MARKERS = ("s", "^", "D", "v", "P", "X", "<", ">", "p", "h")
STYLE = {"font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9.5, "legend.fontsize": 8.5,
         "xtick.labelsize": 8, "ytick.labelsize": 8, "axes.spines.top": False,
         "axes.spines.right": False, "axes.linewidth": 0.8, "svg.hashsalt": "wmplat"}


@dataclass(frozen=True)
class Style:
    color: str
    marker: str
    filled: bool = True
    size: float = 28.0
    zorder: int = 2


@dataclass(frozen=True, eq=False)
class Series:
    """One leaderboard row's per-sample values, as the figures draw them."""
    name: str
    kind: str                   # method · baseline · reference
    method: str
    style: Style
    values: dict[str, np.ndarray]


@dataclass(frozen=True, eq=False)
class Preview:
    """One row's heatmap extract (see wmplat.preview): k samples beside 3 neighbours each."""
    name: str
    samples: np.ndarray         # [k, 64]
    neighbours: np.ndarray      # [k, 3, 64]
    distances: np.ndarray       # [k, 3]
    categories: Sequence[str]   # [k], '' where unknown


def styles(rows: Sequence[tuple[str, str]]) -> list[Style]:
    """A color and marker for each (kind, method) row, stable for a given list of rows."""
    counters = {"method": 0, "baseline": 0}
    out = []
    for kind, method in rows:
        if kind == "reference":
            out.append(_reference_style(method))
            continue
        i = counters[kind]
        counters[kind] += 1
        if kind == "method":
            out.append(Style(METHOD_COLORS[i % len(METHOD_COLORS)], "*", size=90, zorder=4))
        else:
            out.append(Style(BASELINE_COLORS[i % len(BASELINE_COLORS)],
                             BASELINE_MARKERS[i % len(BASELINE_MARKERS)], zorder=3))
    return out


def _reference_style(method: str) -> Style:
    if method == "train":
        return Style(TRAIN_COLOR, "o", size=22, zorder=1)
    if method == "fresh":
        return Style(FRESH_COLOR, "o", filled=False, size=34, zorder=2)
    return Style("#7f7f7f", "o", filled=False, zorder=1)


def png(fig: Figure) -> bytes:
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=DPI, metadata={"Software": None})
    return out.getvalue()


def css_width(fig: Figure) -> int:
    return round(fig.get_figwidth() * SCREEN_DPI)


def _figure(height: float) -> Figure:
    return Figure(figsize=(WIDTH, height), layout="constrained")


# --- accuracy against max similarity -------------------------------------------------------

def scatter(series: Sequence[Series], quality: str = "accuracy",
            similarity: str = "IoU of errors") -> tuple[Figure, str]:
    """Quality (accuracy) against max similarity, every model of every row, the axes named
    after what the task's quality and similarity measure; a second panel zooms on the quality
    of the reference runs when other rows stretch the axis far below them.
    Returns the figure and a sentence for the caption about points the zoom leaves out."""
    with matplotlib.rc_context(STYLE):
        zoom = _zoom_range(series)
        fig = _figure(4.6 if zoom else 5.0)
        axes = fig.subplots(1, 2 if zoom else 1, squeeze=False)[0]
        for ax in axes:
            for s in series:
                _points(ax, s)
            ax.set_xlim(-0.03, 1.03)
            ax.set_xlabel(f"max similarity to a training checkpoint ({similarity})")
            ax.grid(True, color="#e6e6e6", linewidth=0.6)
            ax.set_axisbelow(True)
        axes[0].set_ylabel(quality)
        if zoom:
            axes[0].set_title("all models")
            axes[1].set_ylim(*zoom)
            axes[1].set_title(f"{quality} {zoom[0]:.3f}–{zoom[1]:.3f} (zoom)")
        fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center",
                   ncol=min(4, len(series)), frameon=False, markerscale=1.0,
                   handletextpad=0.3, columnspacing=1.5)
        return fig, _left_out(series, zoom)


def _points(ax, s: Series) -> None:
    st = s.style
    x, y = s.values.get("max_similarity"), s.values.get("accuracy")
    if x is None or y is None:
        return
    edge = "black" if st.marker == "*" else st.color
    ax.scatter(x, y, s=st.size, marker=st.marker, label=s.name, zorder=st.zorder,
               facecolors=st.color if st.filled else "none", edgecolors=edge,
               linewidths=0.4 if st.filled else 0.9, alpha=0.75 if st.filled else 0.9)


def _zoom_range(series: Sequence[Series]) -> tuple[float, float] | None:
    reference = _finite([s.values.get("accuracy") for s in series if s.kind == "reference"])
    every = _finite([s.values.get("accuracy") for s in series])
    if not reference.size:
        return None
    lo, hi = float(reference.min()), float(reference.max())
    span = max(hi - lo, 0.01)
    low, high = lo - span, hi + 0.25 * span
    # zoom only where the whole range is several times the reference runs' range
    return (low, high) if float(every.max() - every.min()) > 3 * (high - low) else None


def _finite(arrays: Sequence[np.ndarray | None]) -> np.ndarray:
    values = np.concatenate([np.zeros(0), *(a for a in arrays if a is not None)])
    return values[np.isfinite(values)]


def _left_out(series: Sequence[Series], zoom: tuple[float, float] | None) -> str:
    if zoom is None:
        return ""
    outside = []
    for s in series:
        y = s.values.get("accuracy")
        if y is not None and (n := int(np.sum((y < zoom[0]) | (y > zoom[1])))):
            outside.append(f"{s.name} {n} of {len(y)}")
    return ("Outside the zoom: " + "; ".join(outside) + ".") if outside else ""


# --- min L2 histograms ---------------------------------------------------------------------

def min_l2_histograms(series: Sequence[Series], reference: Series | None) -> Figure:
    """One small panel per row: the share of its models in each of 15 bins of min L2 to the
    training set, bins shared by every panel, the reference runs outlined in each for scale."""
    drawn = [s for s in series if "min_l2" in s.values]
    edges = _edges([s.values["min_l2"] for s in drawn])
    ncols = min(5, len(drawn))
    nrows = math.ceil(len(drawn) / ncols)
    with matplotlib.rc_context(STYLE):
        fig = _figure(1.0 + 1.75 * nrows)
        axes = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False).ravel()
        outline = _shares(reference.values["min_l2"], edges) if reference in drawn else None
        for ax, s in zip(axes, drawn, strict=False):
            ax.stairs(_shares(s.values["min_l2"], edges), edges, fill=True,
                      color=s.style.color, alpha=0.8 if s.style.filled else 0.55)
            if outline is not None and s is not reference:
                ax.stairs(outline, edges, color=FRESH_COLOR, linewidth=0.9,
                          label=f"{reference.name} (outline)")
            ax.set_title(_wrap(s.name), loc="left")
            ax.grid(True, axis="y", color="#e6e6e6", linewidth=0.6)
            ax.set_axisbelow(True)
        for ax in axes[len(drawn):]:
            ax.set_visible(False)
        for ax in axes[len(drawn) - ncols:len(drawn)]:    # the lowest panel of each column
            ax.set_xlabel("min L2 to training set")
            ax.xaxis.set_tick_params(labelbottom=True)
        for ax in axes[::ncols]:
            ax.set_ylabel("% of models")
        if outline is not None:
            fig.legend(*next(ax for ax in axes if ax.get_legend_handles_labels()[0])
                       .get_legend_handles_labels(), loc="outside upper right", frameon=False)
        return fig


def _edges(values: Sequence[np.ndarray]) -> np.ndarray:
    finite = _finite(values)
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, BINS + 1)


def _shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    counts, _ = np.histogram(values[np.isfinite(values)], bins=edges)
    return 100.0 * counts / max(len(values), 1)


def _wrap(name: str) -> str:
    return "\n".join(textwrap.wrap(name, 26, break_on_hyphens=False)) or name


# --- parameter heatmaps --------------------------------------------------------------------

def heatmaps(previews: Sequence[Preview]) -> Figure:
    """Per row, per sample: its parameters above the same parameters of its 3 nearest aligned
    training checkpoints, one shared diverging color scale."""
    ncols = min(2, len(previews))
    nrows = math.ceil(len(previews) / ncols)
    k = max(len(p.samples) for p in previews)
    limit = max(float(np.abs(np.concatenate([p.samples.ravel(), p.neighbours.ravel()])).max())
                for p in previews) or 1.0
    cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="white")
    with matplotlib.rc_context(STYLE):
        fig = _figure(0.9 + nrows * (0.5 + 0.62 * k))
        fig.get_layout_engine().set(hspace=0.04)
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        for ax, preview in zip(axes, previews, strict=False):
            image = _heatmap_panel(ax, preview, k, cmap, limit)
        for ax in axes[len(previews):]:
            ax.set_visible(False)
        bar = fig.colorbar(image, ax=axes.tolist(), orientation="horizontal",
                           location="bottom", shrink=0.35, aspect=40, pad=0.01)
        bar.set_label("parameter value")
        return fig


def _heatmap_panel(ax, preview: Preview, k: int, cmap, limit: float):
    """Blocks of 4 rows (the sample, then its neighbours), a blank row between blocks."""
    block = 1 + preview.neighbours.shape[1]
    width = preview.samples.shape[1]
    grid = np.full((k * (block + 1) - 1, width), np.nan)
    ticks, labels = [], []
    for j, sample in enumerate(preview.samples):
        top = j * (block + 1)
        grid[top:top + block] = np.vstack([sample[None], preview.neighbours[j]])
        ticks += range(top, top + block)
        labels += [f"sample {j + 1}", *(f"nearest {r + 1}" for r in range(block - 1))]
        category = preview.categories[j] if j < len(preview.categories) else ""
        for r, text in enumerate([category, *(f"d = {d:.2f}" for d in preview.distances[j])]):
            ax.text(width - 0.5 + 0.015 * width, top + r, text, va="center", fontsize=8,
                    color="#333333", style="italic" if r == 0 else "normal")
        ax.add_patch(Rectangle((-0.5, top - 0.5), width, block, fill=False, linewidth=0.6,
                               edgecolor="#333333"))
        ax.plot([-0.5, width - 0.5], [top + 0.5, top + 0.5], color="white", linewidth=2.0)
    image = ax.imshow(grid, cmap=cmap, vmin=-limit, vmax=limit, aspect="auto",
                      interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks(ticks, labels, fontsize=8)
    ax.tick_params(axis="y", length=0, pad=2)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(preview.name, loc="left", fontweight="bold")
    return image
