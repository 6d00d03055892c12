"""G.pt's training data: pairs of checkpoints of one run, and permutation augmentation.

A pair is drawn as G.pt's ParameterDataset draws one: a run (uniformly), a spacing k - j
uniform in [min_spacing, max_spacing] (max_spacing defaults to the run's length - 1), then the
start j uniform among the positions that leave room for it. The start checkpoint θ_j and its
loss condition the model, the later θ_k is the target.

Augmentation permutes the hidden units of both checkpoints of a pair by one random permutation
(per pair, per permutation group of the task), which leaves both networks' functions unchanged.
It is generic: the task's `wmplat.PermutationGroup`s say which axes a permutation reorders,
(name, axis) or (name, axis, block) for an axis of size * block entries moving in blocks.
"""

from dataclasses import dataclass

import torch


@dataclass
class Runs:
    """The train checkpoints grouped by run, each run's checkpoints in step order."""

    order: torch.Tensor      # [num_checkpoints] rows of the train weights, run by run
    offsets: torch.Tensor    # [num_runs] position in `order` of each run's first checkpoint
    lengths: torch.Tensor    # [num_runs] checkpoints of each run

    @classmethod
    def of(cls, records, min_length: int = 1) -> "Runs":
        """The runs of `records` (ModelRecords with `.run` and `.step`) that have at least
        `min_length` checkpoints."""
        by_run: dict[int, list[tuple[int, int]]] = {}
        for row, record in enumerate(records):
            by_run.setdefault(record.run, []).append((record.step, row))
        runs = [sorted(rows) for _, rows in sorted(by_run.items()) if len(rows) >= min_length]
        lengths = torch.tensor([len(r) for r in runs], dtype=torch.long)
        order = torch.tensor([row for r in runs for _, row in r], dtype=torch.long)
        offsets = torch.cumsum(lengths, 0) - lengths
        return cls(order, offsets, lengths)

    def __len__(self) -> int:
        return len(self.lengths)

    def first(self) -> torch.Tensor:
        """[num_runs] the row of each run's earliest checkpoint."""
        return self.order[self.offsets]

    def draw_pairs(self, n: int, g: torch.Generator, min_spacing: int = 1,
                   max_spacing: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows (start [n], target [n]) of n pairs, the target later in the same run."""
        run = torch.randint(len(self), (n,), generator=g)
        length = self.lengths[run]
        longest = length - 1 if max_spacing is None else length.clamp(max=max_spacing + 1) - 1
        low = torch.full_like(longest, min_spacing).minimum(longest)
        spacing = low + (torch.rand(n, generator=g, dtype=torch.float64)
                         * (longest - low + 1)).long()
        start = (torch.rand(n, generator=g, dtype=torch.float64) * (length - spacing)).long()
        base = self.offsets[run] + start
        return self.order[base], self.order[base + spacing]


def permutation_index(spec, groups, n: int, g: torch.Generator) -> torch.Tensor:
    """[n, num_params] gather indices: flat.gather(1, index) permutes each row's hidden units
    by a random permutation of every group (one per row and group)."""
    sizes = {name: torch.Size(shape) for name, shape in spec}
    starts, offset = {}, 0
    for name, size in sizes.items():
        starts[name] = offset
        offset += size.numel()
    index = {name: (torch.arange(sizes[name].numel()) + starts[name]).view(sizes[name])
             .expand(n, *sizes[name]).clone() for name, _ in spec}
    for group in groups:
        perm = torch.argsort(torch.rand(n, group.size, generator=g), dim=1)
        for entry in group.axes:
            name, axis = entry[0], entry[1]
            block = entry[2] if len(entry) == 3 else 1
            index[name] = _permute_axis(index[name], axis + 1, perm, block)
    return torch.cat([index[name].reshape(n, -1) for name, _ in spec], dim=1)


def _permute_axis(x: torch.Tensor, dim: int, perm: torch.Tensor, block: int) -> torch.Tensor:
    """x [n, ...] with axis `dim` (size * block entries) reordered, row r's unit i taking unit
    perm[r, i]'s block."""
    shape = x.shape
    size = perm.shape[1]
    split = x.reshape(*shape[:dim], size, block, *shape[dim + 1:])
    view = [shape[0]] + [1] * (split.dim() - 1)
    view[dim] = size
    idx = perm.view(view).expand(split.shape)
    return split.gather(dim, idx).reshape(shape)


def permute(flat: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return flat.gather(1, index)
