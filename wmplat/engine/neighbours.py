"""A sample's nearest training checkpoints after alignment, and how far it is from their hull.

For each sample, every training checkpoint is aligned to it (the task's permutation symmetry),
distances are exact float64 differences, and the K nearest aligned checkpoints span the convex
hull whose distance to the sample is the interpolation test: a sample on the segment between two
checkpoints, or at the average of several, sits on their hull (residual 0) though far from each.
"""

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import nnls

from ..zoo.params import ParamSpec
from .alignment import Aligner
from .threads import single_threaded

HULL_K = 64


@dataclass
class Neighbours:
    aligned_l2: torch.Tensor      # [n] float64: distance to the nearest aligned checkpoint
    hull_residual: torch.Tensor   # [n] float64: distance to the hull of the K nearest
    nearest: list[torch.Tensor]   # per sample, the K nearest checkpoints, nearest first
    solved: int                   # assignment problems solved, of n x checkpoints


def aligned_neighbours(samples: torch.Tensor, train: torch.Tensor, spec: ParamSpec, groups,
                       exclude=None, k: int = HULL_K) -> Neighbours:
    """`exclude(i)` -> bool [T]: training checkpoints sample i must not be compared with.

    The K nearest aligned checkpoints are found by branch and bound (`Aligner.nearest`: the
    same as aligning all and ranking their float64 norm-expansion distances); they are then
    materialised, their distances recomputed as direct differences (exact for near-duplicates)
    and their hull measured.
    """
    with single_threaded():
        return _aligned_neighbours(samples, train, spec, groups, exclude, k)


def _aligned_neighbours(samples, train, spec, groups, exclude, k) -> Neighbours:
    aligner = Aligner(train, spec, groups)
    distance, residual, nearest, solved = [], [], [], 0
    for i, sample in enumerate(samples.double()):
        found = aligner.nearest(sample, k, None if exclude is None else exclude(i))
        aligned = aligner.take(found.index, found.perms)
        distance.append((aligned - sample).norm(dim=1).min())
        residual.append(hull_residual(sample, aligned))
        nearest.append(found.index)
        solved += found.solved
    empty = torch.empty(0, dtype=torch.float64)
    return Neighbours(torch.stack(distance) if distance else empty,
                      torch.tensor(residual, dtype=torch.float64) if residual else empty,
                      nearest, solved)


def hull_residual(x: torch.Tensor, points: torch.Tensor) -> float:
    """min over weights w >= 0 with sum(w) = 1 of ||x - sum_k w_k points_k||, in float64.

    Solved as non-negative least squares on the k x k Cholesky factor of the points' Gram
    matrix (the same objective up to a constant, without the num_params rows), with the
    sum-to-one constraint as a heavily weighted extra row; the residual is then computed
    directly from the normalised weights.
    """
    gram = points @ points.T
    jitter = 1e-10 * float(gram.diagonal().mean()) + 1e-300
    chol = torch.linalg.cholesky(gram + jitter * torch.eye(len(points), dtype=gram.dtype))
    rhs = torch.linalg.solve_triangular(chol, (points @ x).unsqueeze(1), upper=False)
    weight = 1e3 * float(chol.abs().max())
    a = np.vstack([chol.T.numpy(), np.full((1, len(points)), weight)])
    b = np.concatenate([rhs.squeeze(1).numpy(), [weight]])
    w, _ = nnls(a, b, maxiter=50 * len(points))
    w = torch.from_numpy(w / w.sum() if w.sum() > 0 else np.full_like(w, 1 / len(w)))
    return float((x - w @ points).norm())
