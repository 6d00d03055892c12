"""The training loss: gamma * NT-Xent + (1 - gamma) * layer-normalized reconstruction."""

import torch
import torch.nn.functional as F


def nt_xent(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's contrastive loss for two views [n, d] of the same n models: each view must
    pick its partner among the other 2n - 1 by cosine similarity."""
    z = F.normalize(torch.cat([a, b]), dim=1)
    sim = (z @ z.T) / temperature
    sim.fill_diagonal_(float("-inf"))
    n = len(a)
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return F.cross_entropy(sim, partner)


def layer_normalized_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                         layer: torch.Tensor, layer_var: torch.Tensor) -> torch.Tensor:
    """Mean over layers of each layer's mean squared error divided by that layer's weight
    variance: every layer counts the same, whatever its size or scale.

    pred, target [n, T, W]; mask [T, W] real (not padding) slots; layer [T]; layer_var [L].
    """
    sq = (pred - target).square() * mask
    per_token = sq.sum(dim=(0, 2))                                      # [T]
    counts = mask.sum(dim=1).to(sq.dtype) * len(pred)                   # [T]
    layers = len(layer_var)
    err = torch.zeros(layers, dtype=sq.dtype).index_add(0, layer, per_token)
    size = torch.zeros(layers, dtype=sq.dtype).index_add(0, layer, counts)
    return (err / size / layer_var).mean()


def layer_variance(tokens: torch.Tensor, mask: torch.Tensor, layer: torch.Tensor,
                   layers: int) -> torch.Tensor:
    """[L] variance of each layer's real token values over a set of models [n, T, W]."""
    out = torch.empty(layers)
    for i in range(layers):
        values = tokens[:, layer == i][:, mask[layer == i]]
        out[i] = values.var().clamp(min=1e-8)
    return out
