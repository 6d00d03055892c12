"""The neural field: HyperDiffusion's occupancy MLP at CPU size, and its batched fit.

Input: the positional encoding of HyperDiffusion (nerf-pytorch's embedder, multires 4): the raw
(x, y), then sin and cos of (x, y) times 1, 2, 4 and 8 (2**0 .. 2**3, no factor π): 18 values.
Then linear layers 18 → 32 → 32 → 32 → 1 with ReLU between them: one occupancy logit.
HyperDiffusion's layers are 128 wide; the layout is the same.
"""

import torch
import torch.nn.functional as F

import wmplat

FREQUENCIES = (1.0, 2.0, 4.0, 8.0)
HIDDEN = (32, 32, 32)
ENCODED = 2 + 2 * 2 * len(FREQUENCIES)
SIZES = (ENCODED, *HIDDEN, 1)


def encode(points: torch.Tensor) -> torch.Tensor:
    """[..., 2] -> [..., 18]: x, then sin(f x), cos(f x) for each frequency f in turn."""
    parts = [points]
    for f in FREQUENCIES:
        parts += [torch.sin(points * f), torch.cos(points * f)]
    return torch.cat(parts, dim=-1)


def field_logits(params: dict[str, torch.Tensor], points: torch.Tensor) -> torch.Tensor:
    """Stacked params {name: [n, *shape]} and points [m, 2] (shared) or [n, m, 2] -> [n, m]."""
    return wmplat.mlp_forward(params, encode(points)).squeeze(-1)


def fit_fields(start: dict[str, torch.Tensor], points: torch.Tensor, occupancy: torch.Tensor,
               *, steps: int, batch_size: int, lr: float, order_seed: int,
               on_step=None) -> dict[str, torch.Tensor]:
    """Fit one field per shape, all at once: Adam on BCE-with-logits.

    `start` {name: [n, *shape]} are the starting weights (left unchanged), `points` [n, m, 2]
    and `occupancy` [n, m] (0/1) each shape's samples. Every step takes the same `batch_size`
    sample positions of every shape (one order, drawn from `order_seed`, epoch after epoch), and
    the loss is the sum over shapes of each shape's mean loss: Adam works entry by entry, so each
    field ends as it would alone. The learning rate drops tenfold for the last quarter of steps
    (in place of HyperDiffusion's plateau schedule, which would differ from field to field).
    `on_step(step)` is called every 50 steps and after the last.
    """
    params = {k: v.detach().clone().requires_grad_(True) for k, v in start.items()}
    optimizer = torch.optim.Adam(params.values(), lr=lr)
    g = torch.Generator().manual_seed(order_seed)
    m = points.shape[1]
    order = torch.randperm(m, generator=g)
    cursor = 0
    for step in range(1, steps + 1):
        if cursor + batch_size > m:
            order, cursor = torch.randperm(m, generator=g), 0
        idx = order[cursor:cursor + batch_size]
        cursor += batch_size
        if step == steps - steps // 4 + 1:
            for group in optimizer.param_groups:
                group["lr"] = lr / 10
        logits = field_logits(params, points[:, idx])
        loss = F.binary_cross_entropy_with_logits(logits, occupancy[:, idx], reduction="none")
        optimizer.zero_grad(set_to_none=True)
        loss.mean(dim=1).sum().backward()
        optimizer.step()
        if on_step and (step % 50 == 0 or step == steps):
            on_step(step)
    return {k: v.detach() for k, v in params.items()}
