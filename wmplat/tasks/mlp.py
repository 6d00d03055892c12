"""Multilayer perceptrons as a population: stacked weights, one batched computation.

Parameters are named `fc{i}.weight` [n, out, in] and `fc{i}.bias` [n, out], like torch.nn.Linear
with a leading model dimension, and every function works on all n models at once.
"""

from collections.abc import Sequence

import torch

from ..zoo.params import ParamSpec
from .training import epoch_steps, train_stacked


def mlp_spec(sizes: Sequence[int]) -> ParamSpec:
    """The param spec of an MLP with layer widths `sizes`: fc{i}.weight [out, in], fc{i}.bias."""
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
    """Train one MLP per seed from `init_mlp`, all together (`train_stacked`), with Adam on
    mini-batches in each run's own order, for `epochs` epochs.

    Returns the checkpoints after each of the last `keep_last` epochs, as a flat tensor
    [runs, keep_last, num_params], and their step numbers (optimizer steps so far).
    `on_epoch(epoch)` is called after each epoch, 1-based.
    """
    per_epoch = epoch_steps(len(x), batch_size)
    keep = [e * per_epoch for e in range(epochs - keep_last + 1, epochs + 1)]
    return train_stacked(mlp_forward, init_mlp(sizes, seeds), x, y, seeds,
                         steps=epochs * per_epoch, batch_size=batch_size, lr=lr, keep=keep,
                         on_epoch=on_epoch)
