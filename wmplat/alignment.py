"""Permutation symmetry: aligning one model's hidden units to another's.

A task declares its symmetry as permutation groups: a group is a set of hidden units that can be
reordered without changing the function, given as the (parameter, axis) pairs that the
reordering permutes together. For an MLP, hidden layer i permutes `fc{i}.weight` axis 0,
`fc{i}.bias` axis 0 and `fc{i+1}.weight` axis 1.

Alignment is weight matching (Ainsworth et al. 2023, "Git Re-Basin"): for each group, the
permutation maximising the inner product of the two models' parameters is a linear assignment
problem (scipy's `linear_sum_assignment`). With one group this is exact: it minimises the L2
distance. With several, groups are solved in turn until no permutation changes (a local optimum).
"""

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from .params import ParamSpec, unflatten

MAX_SWEEPS = 50


@dataclass(frozen=True)
class PermutationGroup:
    name: str
    size: int
    axes: tuple[tuple[str, int], ...]     # (parameter name, axis of the unbatched parameter)


def mlp_permutation_groups(sizes) -> list[PermutationGroup]:
    """The symmetry of an MLP whose parameters are named fc{i}.weight / fc{i}.bias."""
    return [PermutationGroup(f"hidden{i}", size, ((f"fc{i}.weight", 0), (f"fc{i}.bias", 0),
                                                  (f"fc{i + 1}.weight", 1)))
            for i, size in enumerate(sizes[1:-1], start=1)]


def check_groups(groups: list[PermutationGroup], spec: ParamSpec) -> None:
    shapes = dict(spec)
    for group in groups:
        for name, axis in group.axes:
            if name not in shapes or axis >= len(shapes[name]) or \
                    shapes[name][axis] != group.size:
                raise ValueError(f"permutation group {group.name!r}: ({name!r}, {axis}) does "
                                 f"not index an axis of size {group.size}")


class Aligner:
    """Aligns many target models to one source model at a time.

    The targets' per-unit slices are prepared once, so that aligning each new source costs one
    matrix product per parameter and one assignment problem per target.
    """

    def __init__(self, targets: torch.Tensor, spec: ParamSpec, groups: list[PermutationGroup]):
        self.spec, self.groups = spec, groups
        self.targets = targets.double()
        self.params = unflatten(self.targets, spec)
        self.sq_norms = (self.targets * self.targets).sum(dim=1)
        permuted = {name for g in groups for name, _ in g.axes}
        self.fixed = [name for name, _ in spec if name not in permuted]
        # with one group, the units of each parameter it permutes, prepared for one GEMM each
        self.units = [self._units(self.params[name], axis, groups[0].size)
                      for name, axis in groups[0].axes] if len(groups) == 1 else None

    @staticmethod
    def _units(tensor: torch.Tensor, axis: int, size: int) -> torch.Tensor:
        return tensor.movedim(axis + 1, 1).reshape(len(tensor), size, -1).contiguous()

    def match(self, source: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Permutations {group: [T, size]} aligning each target to `source` [P], and the
        squared aligned distances [T] (norm expansion in float64, for ranking)."""
        src = unflatten(source.double().unsqueeze(0), self.spec)
        if self.units is None:
            perms = self._weight_matching(src)
            aligned = self.apply(perms)
            return perms, ((aligned - source.double()) ** 2).sum(dim=1)
        group = self.groups[0]
        cost = sum(units @ self._units(src[name], axis, group.size)[0].T
                   for units, (name, axis) in zip(self.units, group.axes, strict=True))
        cols = _solve(cost.transpose(1, 2))
        matched = cost.transpose(1, 2).gather(2, cols.unsqueeze(2)).squeeze(2).sum(dim=1)
        inner = matched + sum((self.params[name] * src[name]).reshape(len(cols), -1).sum(1)
                              for name in self.fixed)
        src_sq = float((source.double() ** 2).sum())
        return {group.name: cols}, (src_sq + self.sq_norms - 2 * inner).clamp(min=0)

    def apply(self, perms: dict[str, torch.Tensor], index: torch.Tensor | None = None):
        """The targets (or those at `index`) permuted by `perms`: [c, P] float64."""
        params = self.params if index is None else {k: v[index] for k, v in self.params.items()}
        perms = perms if index is None else {k: v[index] for k, v in perms.items()}
        permuted = [_permute_param(params[name], name, perms, self.groups) for name, _ in self.spec]
        return torch.cat([p.reshape(len(p), -1) for p in permuted], dim=1)

    def _weight_matching(self, src) -> dict[str, torch.Tensor]:
        count = len(self.targets)
        perms = {g.name: torch.arange(g.size).expand(count, -1).clone() for g in self.groups}
        for _ in range(MAX_SWEEPS):
            changed = False
            for group in self.groups:
                new = _solve(_matching_cost(src, self.params, perms, group, self.groups))
                changed |= not torch.equal(new, perms[group.name])
                perms[group.name] = new
            if not changed:
                break
        return perms


def align(source: torch.Tensor, targets: torch.Tensor, spec: ParamSpec,
          groups: list[PermutationGroup]) -> torch.Tensor:
    """Each of `targets` [c, P] permuted to best match the single model `source` [P]; float64.
    Without groups, the targets unchanged."""
    if not groups:
        return targets.double()
    aligner = Aligner(targets, spec, groups)
    perms, _ = aligner.match(source)
    return aligner.apply(perms)


def _matching_cost(src, tgt, perms, group, groups) -> torch.Tensor:
    """[c, size, size]: inner products of source unit i with target unit j, summed over the
    group's parameters, with every other group's current permutation applied to the targets."""
    others = {g.name: perms[g.name] for g in groups if g is not group}
    cost = 0
    for name, axis in group.axes:
        t = _permute_param(tgt[name], name, others, groups)
        a = src[name][0].movedim(axis, 0).reshape(group.size, -1)
        b = t.movedim(axis + 1, 1).reshape(len(t), group.size, -1)
        cost = cost + (b @ a.T).transpose(1, 2)   # one GEMM: [c * size, r] x [r, size]
    return cost


def _solve(cost: torch.Tensor) -> torch.Tensor:
    """perm[c, i] = the target unit matched to source unit i (maximising cost[c, i, j])."""
    out = np.empty(cost.shape[:2], dtype=np.int64)
    for k, matrix in enumerate(cost.numpy()):
        _, cols = linear_sum_assignment(matrix, maximize=True)
        out[k] = cols
    return torch.from_numpy(out)


def _permute_param(tensor, name, perms, groups) -> torch.Tensor:
    """Apply to a batched parameter [c, *shape] every group permutation listed in `perms`."""
    for group in groups:
        if group.name not in perms:
            continue
        for pname, axis in group.axes:
            if pname == name:
                index = perms[group.name]
                shape = [len(tensor)] + [1] * (tensor.ndim - 1)
                shape[axis + 1] = group.size
                index = index.reshape(shape).expand_as(tensor)
                tensor = tensor.gather(axis + 1, index)
    return tensor


def invariant_signature(weights: torch.Tensor, spec: ParamSpec,
                        groups: list[PermutationGroup]) -> torch.Tensor:
    """[n, P] -> [n, D] with ||sig(a) - sig(b)|| <= the aligned distance of a and b.

    Parameters no group permutes enter as they are; for each group, the parameters that only
    it permutes are cut into per-unit slices, and the sorted norms of those slices enter (the
    reverse triangle inequality and the rearrangement inequality make this a lower bound).
    Parameters that two groups permute are left out, which keeps it a bound.
    """
    params = unflatten(weights.double(), spec)
    touched: dict[str, list[tuple[PermutationGroup, int]]] = {}
    for group in groups:
        for name, axis in group.axes:
            touched.setdefault(name, []).append((group, axis))
    parts = [params[name].reshape(len(weights), -1) for name, _ in spec if name not in touched]
    for group in groups:
        sq = torch.zeros(len(weights), group.size, dtype=torch.float64)
        for name, axis in group.axes:
            if len(touched[name]) == 1:
                unit = params[name].movedim(axis + 1, 1).reshape(len(weights), group.size, -1)
                sq += (unit * unit).sum(dim=2)
        parts.append(sq.sqrt().sort(dim=1).values)
    return torch.cat(parts, dim=1)
