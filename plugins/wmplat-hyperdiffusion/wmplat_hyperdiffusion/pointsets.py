"""Shapes as point sets: contours of a field's logits, or exact outlines, sampled by arc length
and normalised as HyperDiffusion normalises its point clouds before Chamfer distances.

A field's shape is its contour at LEVEL = logit(0.8) = 1.386 (HyperDiffusion meshes its test
samples at that level), found by marching squares (scikit-image's `find_contours`) on the
logits of the GRID x GRID cell centres of the box. The grid is padded by one cell below the
level, so a shape that reaches the edge of the box is closed there. POINTS points are placed by
arc length along all contours together, then centred (mean 0) and scaled by the standard
deviation of all their coordinates. A field with no contour at the level has an empty shape.
"""

import math
from dataclasses import dataclass

import numpy as np
import torch

LEVEL = math.log(0.8 / 0.2)          # logit(0.8) = 1.386
GRID = 64
# HyperDiffusion samples 2,048 points on each 3-D mesh; 512 on a 2-D contour are already about
# three to a grid cell, and Chamfer distances cost the square of the count (README).
POINTS = 512
# Logits beyond this are clipped before contouring (NaN counts as outside).
LOGIT_LIMIT = 1e4


@dataclass
class PointSets:
    """n shapes: points [n, POINTS, 2] float32 (zeros for an empty shape) and empty [n] bool."""

    points: torch.Tensor
    empty: torch.Tensor

    def __len__(self) -> int:
        return len(self.points)

    def __getitem__(self, index) -> "PointSets":
        return PointSets(self.points[index], self.empty[index])


def grid_points() -> torch.Tensor:
    """[GRID * GRID, 2] (x, y) of the cell centres of [-0.5, 0.5]², row by row: row i is y_i."""
    centres = (torch.arange(GRID, dtype=torch.float32) + 0.5) / GRID - 0.5
    y, x = torch.meshgrid(centres, centres, indexing="ij")
    return torch.stack([x.flatten(), y.flatten()], dim=1)


def field_shapes(logits: torch.Tensor) -> PointSets:
    """Logits [n, GRID, GRID] (row i at y_i, column j at x_j) -> the fields' shapes."""
    from skimage.measure import find_contours

    grids = torch.nan_to_num(logits.double(), nan=LEVEL - 1).clamp(-LOGIT_LIMIT, LOGIT_LIMIT)
    polylines = []
    for grid in grids.numpy():
        padded = np.pad(grid, 1, constant_values=LEVEL - 1)
        # (row, column) in padded cells -> (x, y) in the box
        polylines.append([(c[:, ::-1] - 0.5) / GRID - 0.5 for c in find_contours(padded, LEVEL)])
    return _point_sets(polylines)


def outline_shapes(outlines: list[torch.Tensor]) -> PointSets:
    """Closed polygons [k, 2] (exact outlines) -> their shapes, sampled like a field's."""
    return _point_sets([[np.concatenate([o.numpy(), o[:1].numpy()])] for o in outlines])


def _point_sets(shapes: list[list[np.ndarray]]) -> PointSets:
    points = torch.zeros(len(shapes), POINTS, 2)
    empty = torch.ones(len(shapes), dtype=torch.bool)
    for i, polylines in enumerate(shapes):
        sampled = arc_length_points(polylines, POINTS)
        if sampled is not None:
            points[i] = torch.from_numpy(sampled).float()
            empty[i] = False
    return PointSets(points, empty)


def arc_length_points(polylines: list[np.ndarray], n: int) -> np.ndarray | None:
    """n points evenly spaced by arc length along the polylines [k, 2] together (the middle of
    each of n equal stretches), centred and scaled; None when they have no length."""
    starts = [p[:-1] for p in polylines if len(p) >= 2]
    if not starts:
        return None
    start = np.concatenate(starts)
    edge = np.concatenate([p[1:] for p in polylines if len(p) >= 2]) - start
    length = np.linalg.norm(edge, axis=1)
    cumulative = np.cumsum(length)
    total = cumulative[-1]
    if not total > 0:
        return None
    at = (np.arange(n) + 0.5) * (total / n)
    i = np.minimum(np.searchsorted(cumulative, at, side="right"), len(edge) - 1)
    along = (at - (cumulative[i] - length[i])) / np.where(length[i] > 0, length[i], 1)
    return normalise(start[i] + along[:, None] * edge[i])


def normalise(points: np.ndarray) -> np.ndarray | None:
    """Centred on the mean, divided by the standard deviation of all coordinates (HyperDiffusion
    takes it before centring; after, the scale does not depend on where the shape lies)."""
    centred = points - points.mean(axis=0)
    scale = centred.std()
    return centred / scale if scale > 0 else None
