"""Permutation symmetry: aligning one model's hidden units to another's.

A task declares its symmetry as permutation groups: a group is a set of hidden units that can be
reordered without changing the function, given as the (parameter, axis) pairs that the
reordering permutes together. For an MLP, hidden layer i permutes `fc{i}.weight` axis 0,
`fc{i}.bias` axis 0 and `fc{i+1}.weight` axis 1. An entry (parameter, axis, block) says that
the axis holds `size` blocks of `block` consecutive entries, one block per unit: the columns of
a Linear layer after a Flatten, where each channel of a convolution becomes h*w features.
Alignment splits such an axis in two, [size, block], and permutes the first (`expand_blocks`).

Alignment is weight matching (Ainsworth et al. 2023, "Git Re-Basin"): for each group, the
permutation maximising the inner product of the two models' parameters is a linear assignment
problem (scipy's `linear_sum_assignment`). With one group this is exact: it minimises the L2
distance. With several, groups are solved in turn until no permutation changes (a local optimum).

Finding a sample's nearest aligned checkpoints need not align every checkpoint: with one group,
`Aligner.nearest` orders them by a lower bound of the aligned distance (the dual of the
assignment problem, from one float32 product) and stops aligning when the bound passes the
k-th distance found. Its answer is the one aligning every checkpoint would give.
"""

from dataclasses import dataclass
from math import prod

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from ..zoo.params import ParamSpec, unflatten

MAX_SWEEPS = 50
NEAREST_BATCH = 32         # assignment problems solved between two checks of the bound
SLACK_FACTOR = 10           # safety factor over the float32 error analysis of the lower bound


@dataclass(frozen=True)
class PermutationGroup:
    name: str
    size: int
    # (parameter name, axis of the unbatched parameter), or (name, axis, block) for an axis of
    # size * block entries that moves in blocks of `block`
    axes: tuple[tuple[str, int] | tuple[str, int, int], ...]


def mlp_permutation_groups(sizes) -> list[PermutationGroup]:
    """The symmetry of an MLP whose parameters are named fc{i}.weight / fc{i}.bias."""
    return [PermutationGroup(f"hidden{i}", size, ((f"fc{i}.weight", 0), (f"fc{i}.bias", 0),
                                                  (f"fc{i + 1}.weight", 1)))
            for i, size in enumerate(sizes[1:-1], start=1)]


def check_groups(groups: list[PermutationGroup], spec: ParamSpec) -> None:
    shapes = dict(spec)
    for group in groups:
        for name, axis, block in map(_with_block, group.axes):
            if name not in shapes or not 0 <= axis < len(shapes[name]) or block < 1 or \
                    shapes[name][axis] != group.size * block:
                what = f"({name!r}, {axis})" if block == 1 else f"({name!r}, {axis}, {block})"
                length = group.size if block == 1 else f"{group.size} * {block}"
                raise ValueError(f"permutation group {group.name!r}: {what} does not index "
                                 f"an axis of size {length}")
    expand_blocks(spec, groups)


def _with_block(entry: tuple) -> tuple[str, int, int]:
    return (*entry, 1) if len(entry) == 2 else tuple(entry)


def expand_blocks(spec: ParamSpec, groups: list[PermutationGroup]
                  ) -> tuple[ParamSpec, list[PermutationGroup]]:
    """The same flat order with every blocked axis split into [size, block]: a spec and groups
    whose entries are all (parameter, axis), so that a unit is one index of one axis. Groups
    without blocks are returned as they are."""
    blocked: dict[str, dict[int, tuple[int, int]]] = {}
    for group in groups:
        for name, axis, block in map(_with_block, group.axes):
            if block > 1:
                split = blocked.setdefault(name, {})
                if split.setdefault(axis, (group.size, block)) != (group.size, block):
                    raise ValueError(f"permutation groups cut axis {axis} of {name!r} into "
                                     "blocks in two different ways")
    if not blocked:
        return spec, groups
    new_spec, where = [], {}
    for name, shape in spec:
        split, dims, where[name] = blocked.get(name, {}), [], {}
        for axis, length in enumerate(shape):
            where[name][axis] = len(dims)
            dims += list(split[axis]) if axis in split else [length]
        new_spec.append((name, tuple(dims)))
    new_groups = [PermutationGroup(g.name, g.size, tuple(
        (name, where[name][axis]) for name, axis, _ in map(_with_block, g.axes)))
        for g in groups]
    return new_spec, new_groups


class Aligner:
    """Aligns many target models to one source model at a time.

    The targets' per-unit slices are prepared once, so that aligning each new source costs one
    matrix product and one assignment problem per target. With one group, `nearest` solves only
    the assignment problems a lower bound cannot rule out.
    """

    def __init__(self, targets: torch.Tensor, spec: ParamSpec, groups: list[PermutationGroup]):
        self.spec, self.groups = expand_blocks(spec, groups)
        spec, groups = self.spec, self.groups
        self.targets = targets.double()
        self.params = unflatten(self.targets, spec)
        self.sq_norms = (self.targets * self.targets).sum(dim=1)
        permuted = {name for g in groups for name, _ in g.axes}
        self.fixed = [name for name, _ in spec if name not in permuted]
        if len(groups) == 1:
            # per target, its units as rows [unit, its slices of every parameter, |unit|^2, 1]:
            # one GEMM with a source's [-2 * unit, 1, |unit|^2] gives all squared unit distances
            units = self._group_units(self.params)
            unit_sq = (units * units).sum(dim=2, keepdim=True)
            self.units = torch.cat([units, unit_sq, torch.ones_like(unit_sq)], dim=2)
            self.units32 = self.units.float()
            # float32 errors of a squared unit distance D[j, i] and of the dual steps stay below
            # (2 * width + 8) * 2^-24 * (|target unit j|^2 + |source unit i|^2)
            self.slack = SLACK_FACTOR * (2 * self.units.shape[2] + 8) * 2.0 ** -24
            self.unit_scale = unit_sq.sum(dim=(1, 2))
            self.fixed_params = self._fixed_params(self.params, len(self.targets))
        else:
            self.units = None
            # per group axis, the targets' units first: [T, size, *other axes]
            self.layouts = {(g.name, name, axis):
                            self.params[name].movedim(axis + 1, 1).contiguous()
                            for g in groups for name, axis in g.axes}
            self.neighbours = {g.name: [h.name for h in groups if h is not g and
                                        {n for n, _ in h.axes} & {n for n, _ in g.axes}]
                               for g in groups}

    def _group_units(self, params) -> torch.Tensor:
        group = self.groups[0]
        return torch.cat([self._units(params[name], axis, group.size) for name, axis in group.axes],
                         dim=2)

    def _fixed_params(self, params, count: int) -> torch.Tensor:
        return torch.cat([params[name].reshape(count, -1) for name in self.fixed]
                         + [torch.zeros(count, 0, dtype=torch.float64)], dim=1)

    @staticmethod
    def _units(tensor: torch.Tensor, axis: int, size: int) -> torch.Tensor:
        return tensor.movedim(axis + 1, 1).reshape(len(tensor), size, -1).contiguous()

    def match(self, source: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Permutations {group: [T, size]} aligning each target to `source` [P], and the
        squared aligned distances [T] (float64 norm expansions, for ranking)."""
        if not self.groups:  # no symmetry: plain distances, one matrix-vector product
            src = source.double()
            return {}, (self.sq_norms - 2 * (self.targets @ src) + src @ src).clamp_min(0)
        if self.units is None:
            perms = self._weight_matching(unflatten(source.double().unsqueeze(0), self.spec))
            aligned = self.apply(perms)
            return perms, ((aligned - source.double()) ** 2).sum(dim=1)
        costs = self._costs(source)
        cols, sq_dist = self._solve_costs(costs, torch.arange(len(self.targets)))
        return {self.groups[0].name: cols}, sq_dist

    def nearest(self, source: torch.Tensor, k: int,
                exclude: torch.Tensor | None = None) -> "Nearest":
        """The k targets nearest to `source` after alignment (fewer if fewer are not excluded),
        nearest first: the same ones, distances and permutations as ranking all of `match`.

        With one group, branch and bound: targets are aligned in the order of a lower bound of
        their aligned distance, in batches, until the next bound exceeds the k-th smallest exact
        distance found; every target left has a larger distance. With several, all are aligned.
        """
        allowed = torch.ones(len(self.targets), dtype=torch.bool) if exclude is None \
            else ~torch.broadcast_to(exclude.reshape(-1), (len(self.targets),))
        count = min(k, int(allowed.sum()))
        if self.units is None:
            perms, sq_dist = self.match(source)
            near = sq_dist.masked_fill(~allowed, float("inf")).topk(count, largest=False).indices
            return Nearest(near, sq_dist[near], {g: p[near] for g, p in perms.items()},
                           solved=len(self.targets))
        costs = self._costs(source)
        bound = self._lower_bound(costs)
        order = bound.argsort()
        order = order[allowed[order]]
        index, cols, sq_dist = [], [], []
        kth, start = float("inf"), 0
        while start < len(order) and count:
            batch = order[start:start + (count if start == 0 else NEAREST_BATCH)]
            batch = batch[bound[batch] <= kth]       # bounds are sorted: a prefix survives
            if not len(batch):
                break
            batch_cols, batch_sq = self._solve_costs(costs, batch)
            index.append(batch), cols.append(batch_cols), sq_dist.append(batch_sq)
            start += len(batch)
            if start >= count:
                kth = float(torch.cat(sq_dist).kthvalue(count).values)
        if not count:
            return Nearest(torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.float64),
                           {self.groups[0].name: torch.zeros(0, self.groups[0].size,
                                                             dtype=torch.long)}, solved=0)
        index, cols, sq_dist = torch.cat(index), torch.cat(cols), torch.cat(sq_dist)
        top = sq_dist.topk(count, largest=False).indices
        return Nearest(index[top], sq_dist[top], {self.groups[0].name: cols[top]},
                       solved=len(index))

    def _costs(self, source: torch.Tensor) -> "SourceCosts":
        src = unflatten(source.double().unsqueeze(0), self.spec)
        units = self._group_units(src)[0]
        unit_sq = (units * units).sum(dim=1, keepdim=True)
        row = torch.cat([-2 * units, torch.ones_like(unit_sq), unit_sq], dim=1)
        fixed = ((self.fixed_params - self._fixed_params(src, 1)) ** 2).sum(dim=1)
        return SourceCosts(row, fixed, float(unit_sq.sum()))

    def _unit_distances(self, units: torch.Tensor, row: torch.Tensor) -> torch.Tensor:
        """[c, size, size]: squared distance of target unit j (rows) to source unit i."""
        return (units.reshape(-1, units.shape[2]) @ row.T).reshape(len(units), *units.shape[1:2],
                                                                  len(row))

    def _solve_costs(self, costs: "SourceCosts", index: torch.Tensor):
        """Optimal permutations [n, size] of the targets at `index`, squared distances [n]."""
        dist = self._unit_distances(self.units[index], costs.row).numpy()   # [n, j, i]
        cols = np.empty((len(dist), self.groups[0].size), dtype=np.int64)
        for k, matrix in enumerate(dist):
            cols[k] = linear_sum_assignment(matrix.T)[1]
        matched = np.take_along_axis(dist, cols[:, None, :], axis=1).sum(axis=(1, 2))
        return torch.from_numpy(cols), (torch.from_numpy(matched) + costs.fixed[index]).clamp(min=0)

    def _lower_bound(self, costs: "SourceCosts") -> torch.Tensor:
        """[T]: a lower bound of each squared aligned distance, never above the float64 value
        `match` ranks by.

        The squared distance is an assignment problem over unit distances D[j, i], plus the
        parameters no group permutes; any u, v with u_j + v_i <= D[j, i] bound it from below by
        sum(u) + sum(v) (linear programming duality). u = row minima then v = the smallest rest
        per column, and the same from the columns, give two such bounds; the larger is kept.
        D is computed in float32; its errors stay below `self.slack` * (|target unit j|^2 +
        |source unit i|^2), so subtracting that much of all units' squared norms keeps a bound.
        """
        dist = self._unit_distances(self.units32, costs.row.float())
        row = dist.amin(dim=2)
        by_rows = row.double().sum(1) + (dist - row.unsqueeze(2)).amin(dim=1).double().sum(1)
        col = dist.amin(dim=1)
        by_cols = col.double().sum(1) + (dist - col.unsqueeze(1)).amin(dim=2).double().sum(1)
        slack = self.slack * (self.unit_scale + costs.unit_scale)
        return torch.maximum(by_rows, by_cols) - slack + costs.fixed

    def apply(self, perms: dict[str, torch.Tensor], index: torch.Tensor | None = None):
        """The targets (or those at `index`) permuted by `perms`: [c, P] float64."""
        if index is not None:
            perms = {k: v[index] for k, v in perms.items()}
        return self.take(index, perms)

    def take(self, index: torch.Tensor | None, perms: dict[str, torch.Tensor]) -> torch.Tensor:
        """The targets at `index` (all if None), permuted by `perms` (one row per target taken):
        [c, P] float64."""
        params = self.params if index is None else {k: v[index] for k, v in self.params.items()}
        permuted = [_permute_param(params[name], name, perms, self.groups) for name, _ in self.spec]
        return torch.cat([p.reshape(len(p), -1) for p in permuted], dim=1)

    def _weight_matching(self, src) -> dict[str, torch.Tensor]:
        """Each group's assignment solved in turn, sweep after sweep, until no permutation
        changes (at most MAX_SWEEPS sweeps).

        A target's problems depend only on its own permutations, so a group is re-solved only
        for the targets where a group sharing a parameter with it has changed since it was last
        solved: the others would get the same cost matrix, hence the same answer, again. This
        gives the permutations that re-solving every target in every sweep gives.
        """
        count = len(self.targets)
        perms = {g.name: torch.arange(g.size).expand(count, -1).clone() for g in self.groups}
        stale = {g.name: torch.ones(count, dtype=torch.bool) for g in self.groups}
        for _ in range(MAX_SWEEPS):
            for group in self.groups:
                index = stale[group.name].nonzero().squeeze(1)
                if not len(index):
                    continue
                new = _solve(self._matching_cost(src, perms, group, index))
                moved = index[(new != perms[group.name][index]).any(dim=1)]
                perms[group.name][index] = new
                stale[group.name][index] = False
                for name in self.neighbours[group.name]:
                    stale[name][moved] = True
            if not any(s.any() for s in stale.values()):
                break
        return perms

    def _matching_cost(self, src, perms, group, index) -> torch.Tensor:
        """[n, size, size]: inner products of source unit i with unit j of the targets at
        `index`, summed over the group's parameters, with every other group's current
        permutation applied to the targets."""
        cost = 0
        for name, axis in group.axes:
            others = {_moved(a, axis): perms[g.name][index] for g in self.groups
                      if g is not group for n, a in g.axes if n == name}
            t = self._read(self.layouts[group.name, name, axis], index, others)
            a = src[name][0].movedim(axis, 0).reshape(group.size, -1)
            cost = cost + (t @ a.T).transpose(1, 2)   # one GEMM: [n * size, r] x [r, size]
        return cost

    @staticmethod
    def _read(units: torch.Tensor, index: torch.Tensor, perms) -> torch.Tensor:
        """[n, size, r]: `units` [T, size, *rest] of the targets at `index`, each axis in `perms`
        {axis of units[0]: [n, length]} read through its permutation."""
        count, size = len(index), units.shape[1]
        if not perms:
            picked = units if count == len(units) else units.index_select(0, index)
            return picked.reshape(count, size, -1)
        grid = units.shape[1:max(perms) + 2]        # the axes up to the last permuted one
        rows = _positions(grid, perms, index * prod(grid))
        return units.view(-1, prod(units.shape[len(grid) + 1:])).index_select(
            0, rows.view(-1)).view(count, size, -1)


@dataclass
class SourceCosts:
    row: torch.Tensor      # [size, width]: the source's units as [-2 * unit, 1, |unit|^2]
    fixed: torch.Tensor    # [T]: squared distance over the parameters no group permutes
    unit_scale: float      # sum of the source units' squared norms


@dataclass
class Nearest:
    index: torch.Tensor               # [k] targets, nearest first
    sq_dist: torch.Tensor             # [k] squared aligned distances (norm expansion, float64)
    perms: dict[str, torch.Tensor]    # {group: [k, size]}, one row per target of `index`
    solved: int                       # assignment problems solved to find them


def align(source: torch.Tensor, targets: torch.Tensor, spec: ParamSpec,
          groups: list[PermutationGroup]) -> torch.Tensor:
    """Each of `targets` [c, P] permuted to best match the single model `source` [P]; float64.
    Without groups, the targets unchanged."""
    if not groups:
        return targets.double()
    aligner = Aligner(targets, spec, groups)
    perms, _ = aligner.match(source)
    return aligner.apply(perms)


def _moved(axis: int, first: int) -> int:
    """Where `axis` of a parameter lands when axis `first` is moved to the front."""
    return 0 if axis == first else axis + 1 if axis < first else axis


def _positions(shape, perms, base: torch.Tensor) -> torch.Tensor:
    """[n, *shape]: flat positions of the entries of n arrays of `shape` that begin at `base`
    [n], each axis in `perms` {axis: [n, length]} read through its permutation."""
    pos = base.reshape(-1, *[1] * len(shape))
    stride = 1
    for axis in reversed(range(len(shape))):
        view = [1] * (len(shape) + 1)
        view[axis + 1] = shape[axis]
        if axis in perms:
            view[0] = len(base)
            step = perms[axis].reshape(view)
        else:
            step = torch.arange(shape[axis]).reshape(view)
        pos = pos + step * stride
        stride *= shape[axis]
    return pos


def _solve(cost: torch.Tensor) -> torch.Tensor:
    """perm[c, i] = the target unit matched to source unit i (maximising cost[c, i, j])."""
    # scipy maximises by negating the matrix: negating first, contiguously, is the same problem
    costs = (-cost).contiguous().numpy()
    return torch.from_numpy(np.stack([linear_sum_assignment(m)[1] for m in costs]))


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
    spec, groups = expand_blocks(spec, groups)
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
