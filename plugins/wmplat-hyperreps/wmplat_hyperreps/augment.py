"""The three augmentations of Hyper-Representations, on a batch of flat weight vectors.

- permutation: reorder each permutation group's hidden units, the same order on every axis
  the group touches, so the network computes the same function (a different view of the same
  model, which the contrastive loss pulls together);
- noise: Gaussian noise on every weight;
- erasing: with probability p, zero a contiguous block of the token sequence covering a random
  share of it (the paper's "block" random erasing).
"""

import torch


def random_permutations(groups, n: int, g: torch.Generator) -> dict[str, torch.Tensor]:
    """{group name: [n, size]} one random permutation per model and group."""
    return {group.name: torch.rand(n, group.size, generator=g).argsort(dim=1)
            for group in groups}


def permute(params: dict[str, torch.Tensor], groups,
            perms: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Stacked params {name: [n, *shape]} with each group's units reordered by `perms`."""
    out = dict(params)
    for group in groups:
        order = perms[group.name]                                       # [n, size]
        for name, axis in group.axes:
            t = out[name]
            shape = [len(t)] + [1] * (t.ndim - 1)
            shape[axis + 1] = group.size
            out[name] = t.gather(axis + 1, order.reshape(shape).expand_as(t))
    return out


def add_noise(x: torch.Tensor, sigma: float, g: torch.Generator) -> torch.Tensor:
    if sigma == 0:
        return x
    return x + sigma * torch.randn(x.shape, generator=g)


def erase(tokens: torch.Tensor, p: float, scale: tuple[float, float],
          g: torch.Generator) -> torch.Tensor:
    """tokens [n, T, W]: for each model, with probability p, zero tokens [start, start + k)
    with k = round(share * T), share uniform in `scale`."""
    n, length = tokens.shape[:2]
    share = scale[0] + (scale[1] - scale[0]) * torch.rand(n, generator=g)
    size = (share * length).round().long().clamp(min=1)
    start = (torch.rand(n, generator=g) * (length - size + 1)).long()
    hit = torch.rand(n, generator=g) < p
    pos = torch.arange(length)
    erased = (pos >= start[:, None]) & (pos < (start + size)[:, None]) & hit[:, None]
    return tokens.masked_fill(erased.unsqueeze(-1), 0.0)
