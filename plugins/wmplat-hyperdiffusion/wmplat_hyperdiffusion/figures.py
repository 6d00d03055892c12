"""The task's figures in the HTML report, drawn by `chamfer_to_train` on every row from the
Chamfer distances it computes anyway: the first samples' shapes beside their nearest training
shapes (what Zeng et al. show of HyperDiffusion), and the histogram of each sample's least CD to
the training shapes against the heldout fields' own, the reference of a new shape.

Drawn on matplotlib's `Figure` (Agg, no pyplot state); the same values give the same PNG bytes.
"""

import numpy as np
import torch
from matplotlib.figure import Figure

import wmplat

from .chamfer import EMPTY_CD
from .pointsets import PointSets

GRID_SAMPLES = 8     # samples shown beside their nearest training shapes
BINS = 15            # the paper's histograms
DPI = 100
# Shapes are normalised to unit standard deviation: ±LIMIT holds every shape of the family.
LIMIT = 2.4
SAMPLE_COLOR, TRAIN_COLOR, FRESH_COLOR = "#d62728", "#1f77b4", "#111111"


def nearest_shapes(samples: PointSets, nearest: PointSets, cd: torch.Tensor,
                   nearest_ids: list[str]) -> wmplat.Figure:
    """The k (≤ GRID_SAMPLES) samples' shapes (top) over their nearest train fields' shapes
    (bottom), cd [k] between each pair in the sample's title."""
    k = len(samples)
    fig = Figure(figsize=(1.25 * max(k, 2), 2.9), layout="constrained")
    axes = fig.subplots(2, max(k, 1), squeeze=False)
    for i in range(k):
        _shape(axes[0, i], samples[i], SAMPLE_COLOR, f"sample {i}\nCD {float(cd[i]):.3g}")
        _shape(axes[1, i], nearest[i], TRAIN_COLOR, f"nearest train\n{nearest_ids[i]}")
    if not k:
        for ax in axes.flat:
            ax.set_axis_off()
    caption = (f"The first {k} samples' shapes (top, red) above the nearest train field's "
               "shape to each (bottom, blue), as the contour points the Chamfer distance (CD) "
               "compares, centred and scaled to unit spread; the CD between the two in the "
               "sample's title (0: a copy of a training shape). Fields of the sample's own run "
               "are left out in the fresh and train rows.")
    return wmplat.Figure.from_matplotlib("nearest-train-shapes", caption, fig, dpi=DPI)


def _shape(ax, shape: PointSets, color: str, title: str) -> None:
    ax.set_title(title, fontsize=7.5)
    ax.set_xlim(-LIMIT, LIMIT)
    ax.set_ylim(-LIMIT, LIMIT)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if bool(shape.empty):
        ax.text(0, 0, "no shape", ha="center", va="center", fontsize=7.5, color="#555")
        return
    points = shape.points.numpy()
    ax.scatter(points[:, 0], points[:, 1], s=0.6, color=color, linewidths=0)


def cd_histogram(values: torch.Tensor, reference: torch.Tensor) -> wmplat.Figure:
    """Histogram of the row's least CD to a training shape, values [n], beside the heldout
    fields' own, reference [m], each as a share of its set, BINS bins shared by both."""
    shown, ref_shown = _drawn(values), _drawn(reference)
    top = max([*shown, *ref_shown], default=0.0)
    edges = np.linspace(0.0, top if top > 0 else 1e-3, BINS + 1)
    fig = Figure(figsize=(5.2, 2.6), layout="constrained")
    ax = fig.subplots()
    if len(shown):
        ax.hist(shown, bins=edges, weights=np.full(len(shown), 1 / len(values)),
                color=SAMPLE_COLOR, alpha=0.75, label=f"samples (median {_median(values)})")
    if len(ref_shown):
        ax.hist(ref_shown, bins=edges, weights=np.full(len(ref_shown), 1 / len(reference)),
                histtype="step", color=FRESH_COLOR, linewidth=1.4,
                label=f"fresh: heldout fields (median {_median(reference)})")
    ax.set(xlabel="least Chamfer distance to a train field's shape", ylabel="share of the set")
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(frameon=False, fontsize=7.5)
    left_out = len(values) - len(shown)
    caption = (f"Each sample's least Chamfer distance (CD) to a train field's shape (red; "
               f"fields of the sample's own run left out in the fresh and train rows) against "
               f"the same for the heldout fields, new fits of the family (black outline): "
               f"samples left of the outline draw shapes closer to training shapes than new "
               f"fields do. {BINS} bins shared by both, each set as a share of its size."
               + (f" {left_out} of {len(values)} samples draw no shape (CD {EMPTY_CD:g}) and "
                  "are not drawn." if left_out else ""))
    return wmplat.Figure.from_matplotlib("cd-to-train-histogram", caption, fig, dpi=DPI)


def _drawn(values: torch.Tensor) -> np.ndarray:
    """The values a histogram draws: finite and below EMPTY_CD (an empty shape's)."""
    v = values.double().numpy()
    return v[np.isfinite(v) & (v < EMPTY_CD)]


def _median(values: torch.Tensor) -> str:
    """The median, empty shapes (and a zoo without train fields: inf) counted as EMPTY_CD."""
    if not len(values):
        return "none"
    return f"{float(values.double().clamp(max=EMPTY_CD).quantile(0.5)):.3g}"
