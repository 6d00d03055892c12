"""Training a population of models as one computation: the weights of every run stacked along
a leading model dimension, one optimizer step for all of them.

Each run draws its own mini-batch order from its own seed, and the loss is the sum over runs of
each run's mean loss, so the runs' gradients stay independent: a run trained beside others ends
with the weights it would have alone.
"""

from collections.abc import Callable, Iterable, Sequence

import torch
import torch.nn.functional as F

Forward = Callable[[dict[str, torch.Tensor], torch.Tensor], torch.Tensor]


def train_stacked(forward: Forward, params: dict[str, torch.Tensor], x: torch.Tensor,
                  y: torch.Tensor, seeds: Sequence[int], *, steps: int, batch_size: int,
                  lr: float, keep: Iterable[int], trainable: Sequence[str] | None = None,
                  on_epoch: Callable[[int], None] | None = None
                  ) -> tuple[torch.Tensor, list[int]]:
    """Train one model per seed with Adam and cross-entropy, all at once, for `steps` steps.

    `params` {name: [runs, *shape]} are the starting weights (left unchanged); only the names
    in `trainable` (default: all) train, the others stay as given. `forward(params, x)` maps
    per-run inputs [runs, batch, ...] to logits [runs, batch, classes]. Every epoch, run i
    shuffles (x, y) with a generator seeded `seeds[i] + 7919`. `on_epoch(epoch)` is called
    after each epoch (1-based; the last may be partial).

    Returns the trainable weights after each step in `keep`, flat in the order of `trainable`
    [runs, len(keep), size], and those step numbers.
    """
    names = list(trainable) if trainable is not None else list(params)
    unknown = sorted(set(names) - set(params))
    if unknown:
        raise ValueError(f"trainable names {unknown} are not among the parameters "
                         f"{list(params)}")
    keep = sorted(set(keep))
    if not keep or keep[0] < 1 or keep[-1] > steps:
        raise ValueError(f"keep must name steps from 1 to {steps}, got {keep}")
    params = {k: v.detach().clone().requires_grad_(True) if k in names else v.detach()
              for k, v in params.items()}
    optimizer = torch.optim.Adam([params[k] for k in names], lr=lr)
    generators = [torch.Generator().manual_seed(int(s) + 7919) for s in seeds]
    runs, kept, step, epoch = len(seeds), [], 0, 0
    while step < steps:
        order = torch.stack([torch.randperm(len(x), generator=g) for g in generators])
        epoch += 1
        for idx in order.split(batch_size, dim=1):
            logits = forward(params, x[idx])
            loss = F.cross_entropy(logits.flatten(0, 1), y[idx].flatten(), reduction="sum")
            optimizer.zero_grad(set_to_none=True)
            (loss / idx.shape[1]).backward()
            optimizer.step()
            step += 1
            if step in keep:
                kept.append(torch.cat([params[k].detach().reshape(runs, -1) for k in names],
                                      dim=1))
            if step == steps:
                break
        if on_epoch:
            on_epoch(epoch)
    return torch.stack(kept, dim=1), keep


def epoch_steps(n_examples: int, batch_size: int) -> int:
    """Optimizer steps in one epoch of `n_examples` in mini-batches of `batch_size`."""
    return -(-n_examples // batch_size)
