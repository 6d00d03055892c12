"""Chamfer distances between all pairs of two lists of shapes, in blocks of pairs.

CD(X, Y) = mean_x min_y ‖x − y‖² + mean_y min_x ‖x − y‖² (HyperDiffusion's, squared
distances). An empty shape is EMPTY_CD from every non-empty one and 0 from another empty one.
"""

import torch

import wmplat

from .pointsets import PointSets

# Larger than the distance between any two normalised shapes (their points have unit standard
# deviation; two blobs of the family are at most about 0.4 apart), so an empty shape is never
# near a real one.
EMPTY_CD = 10.0


def chamfer_matrix(a: PointSets, b: PointSets) -> torch.Tensor:
    """[len(a), len(b)] float64 Chamfer distances; exactly 0 for identical point sets."""
    nb = len(b)
    if not len(a) or not nb:
        return torch.zeros(len(a), nb, dtype=torch.float64)
    return chamfer_pairs(a, b, len(a) * nb, lambda p: (p // nb, p % nb)).view(len(a), nb)


def chamfer_within(a: PointSets) -> torch.Tensor:
    """[len(a), len(a)] float64 Chamfer distances among one (small) list of shapes: symmetric,
    zero diagonal, each pair computed once."""
    n = len(a)
    out = torch.zeros(n, n, dtype=torch.float64)
    rows, cols = torch.triu_indices(n, n, offset=1)
    if len(rows):
        values = chamfer_pairs(a, a, len(rows), lambda p: (rows[p], cols[p]))
        out[rows, cols] = values
        out[cols, rows] = values
    return out


def chamfer_pairs(a: PointSets, b: PointSets, count: int, pairs) -> torch.Tensor:
    """[count] float64: CD between a[i] and b[j] for (i, j) = pairs(indices) of pair indices
    0 .. count − 1, a block of pairs at a time (as many as fit the working set). Squared
    distances by ‖x‖² + ‖y‖² − 2x·y in float32, about 1e-7 off at these scales; two equal
    point sets get exactly 0."""
    x, y = a.points, b.points
    x_sq, y_sq = x.pow(2).sum(-1), y.pow(2).sum(-1)
    out = torch.empty(count, dtype=torch.float64)
    for start, stop in wmplat.blocks(count, wmplat.step_size(4 * x.shape[1] * y.shape[1])):
        ia, ib = pairs(torch.arange(start, stop))
        d = torch.baddbmm(y_sq[ib].unsqueeze(1), x[ia], y[ib].transpose(1, 2), alpha=-2)
        to_y = d.amin(dim=2).add_(x_sq[ia]).clamp_(min=0).mean(dim=1)
        to_x = d.add_(x_sq[ia].unsqueeze(2)).amin(dim=1).clamp_(min=0).mean(dim=1)
        values = to_y.double() + to_x.double()
        values[(x[ia] == y[ib]).flatten(1).all(dim=1)] = 0.0
        values[a.empty[ia] != b.empty[ib]] = EMPTY_CD
        out[start:stop] = values
    return out
