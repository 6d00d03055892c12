"""Multilayer perceptrons as a population: stacked weights, one batched computation.

Parameters are named `fc{i}.weight` [n, out, in] and `fc{i}.bias` [n, out], like torch.nn.Linear
with a leading model dimension, and every function works on all n models at once.
"""

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..zoo.params import ParamSpec


def mlp_spec(sizes: Sequence[int]) -> ParamSpec:
    spec: ParamSpec = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=False), start=1):
        spec += [(f"fc{i}.weight", (fan_out, fan_in)), (f"fc{i}.bias", (fan_out,))]
    return spec


def mlp_forward(params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Inputs [m, in] shared by all models, or [n, m, in] per model -> logits [n, m, out]."""
    layers = len(params) // 2
    h = x
    for i in range(1, layers + 1):
        w, b = params[f"fc{i}.weight"], params[f"fc{i}.bias"]
        # In place on the product's fresh output: one activation buffer a layer, same values
        # (and gradients) as out-of-place ops.
        h = torch.matmul(h, w.transpose(1, 2)).add_(b.unsqueeze(1))
        if i < layers:
            h = h.relu_()
    return h


def init_mlp(sizes: Sequence[int], seeds: Sequence[int]) -> dict[str, torch.Tensor]:
    """torch.nn.Linear's default initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), drawn
    from each run's own seed so a run's weights do not depend on which runs train beside it."""
    per_run = []
    for seed in seeds:
        g = torch.Generator().manual_seed(int(seed))
        run = {}
        for i, fan_in in enumerate(sizes[:-1], start=1):
            for name, shape in mlp_spec(sizes)[2 * i - 2: 2 * i]:
                run[name] = (torch.rand(shape, generator=g) * 2 - 1) / fan_in ** 0.5
        per_run.append(run)
    return {name: torch.stack([r[name] for r in per_run]) for name in per_run[0]}


def train_mlps(x: torch.Tensor, y: torch.Tensor, sizes: Sequence[int], seeds: Sequence[int],
               epochs: int, batch_size: int, lr: float, keep_last: int,
               on_epoch=None) -> tuple[torch.Tensor, list[int]]:
    """Train one MLP per seed, all together, with Adam on mini-batches in each run's own order.

    Returns the checkpoints after each of the last `keep_last` epochs, as a flat tensor
    [runs, keep_last, num_params], and their step numbers (optimizer steps so far).
    """
    params = {k: v.clone().requires_grad_(True) for k, v in init_mlp(sizes, seeds).items()}
    optimizer = torch.optim.Adam(params.values(), lr=lr)
    generators = [torch.Generator().manual_seed(int(s) + 7919) for s in seeds]
    n_runs, n = len(seeds), len(x)
    checkpoints, steps, step = [], [], 0
    for epoch in range(epochs):
        order = torch.stack([torch.randperm(n, generator=g) for g in generators])
        for idx in order.split(batch_size, dim=1):
            logits = mlp_forward(params, x[idx])
            # Sum over runs of each run's mean loss: the runs' gradients stay independent.
            loss = F.cross_entropy(logits.flatten(0, 1), y[idx].flatten(), reduction="sum")
            optimizer.zero_grad(set_to_none=True)
            (loss / idx.shape[1]).backward()
            optimizer.step()
            step += 1
        if epoch >= epochs - keep_last:
            checkpoints.append(torch.cat([p.detach().reshape(n_runs, -1)
                                          for p in params.values()], dim=1))
            steps.append(step)
        if on_epoch:
            on_epoch(epoch)
    return torch.stack(checkpoints, dim=1), steps
