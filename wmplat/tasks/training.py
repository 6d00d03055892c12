"""Training a population of models as one computation: the weights of every run stacked along
a leading model dimension, one optimizer step for all of them.

Each run draws its own mini-batch order from its own seed, and the loss is the sum over runs of
each run's mean loss, so the runs' gradients stay independent. The optimizers offered (Adam;
SGD with momentum, Nesterov momentum and weight decay) update every weight from its own
gradient and state alone, element by element, so stacking runs couples nothing: a run trained
beside others ends with the weights it would have alone. (An optimizer that looks at a whole
tensor at once, such as LARS or clipping by the gradient's norm, would mix the runs; none is
offered.)
"""

import math
from collections.abc import Callable, Iterable, Sequence

import torch
import torch.nn.functional as F

Forward = Callable[[dict[str, torch.Tensor], torch.Tensor], torch.Tensor]
OPTIMIZERS = ("adam", "sgd")
LR_SCHEDULES = ("constant", "cosine")


def train_stacked(forward: Forward, params: dict[str, torch.Tensor], x: torch.Tensor,
                  y: torch.Tensor, seeds: Sequence[int], *, steps: int, batch_size: int,
                  lr: float, keep: Iterable[int] | Sequence[Iterable[int]],
                  trainable: Sequence[str] | None = None,
                  on_epoch: Callable[[int], None] | None = None, optimizer: str = "adam",
                  momentum: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0,
                  lr_schedule: str = "constant", drop_last: bool = False
                  ) -> tuple[torch.Tensor, list[int] | list[list[int]]]:
    """Train one model per seed on cross-entropy, all at once, for `steps` steps.

    `params` {name: [runs, *shape]} are the starting weights (left unchanged); only the names
    in `trainable` (default: all) train, the others stay as given. `forward(params, x)` maps
    per-run inputs [runs, batch, ...] to logits [runs, batch, classes]. Every epoch, run i
    shuffles (x, y) with a generator seeded `seeds[i] + 7919`; with `drop_last` the last,
    partial mini-batch of each epoch is skipped (torch's DataLoader option). `on_epoch(epoch)`
    is called after each epoch (1-based; the last may be partial).

    The optimizer: "adam" (torch.optim.Adam, the default) or "sgd" (torch.optim.SGD with
    `momentum`, `nesterov`, no dampening); `weight_decay` is either's L2 term. `lr_schedule`
    "constant" keeps `lr`; "cosine" sets, before epoch e (0-based) of E = the epochs `steps`
    span, lr * (1 + cos(pi * e / E)) / 2: once per epoch, never reaching 0 (G.pt's schedule).

    `keep` names the steps to return, 0 being the starting weights: one list for every run, or
    one list per run (all of the same length; G.pt keeps random steps drawn per run).

    Returns the trainable weights after each kept step, flat in the order of `trainable`
    [runs, len(keep), size], and the kept steps, sorted: a list, or a list per run when `keep`
    was given per run.
    """
    names = list(trainable) if trainable is not None else list(params)
    unknown = sorted(set(names) - set(params))
    if unknown:
        raise ValueError(f"trainable names {unknown} are not among the parameters "
                         f"{list(params)}")
    per_run, kept_steps = _kept_steps(keep, len(seeds), steps)
    params = {k: v.detach().clone().requires_grad_(True) if k in names else v.detach()
              for k, v in params.items()}
    opt = _optimizer([params[k] for k in names], optimizer, lr, momentum, nesterov,
                     weight_decay)
    per_epoch = epoch_steps(len(x), batch_size, drop_last=drop_last)
    schedule = _schedule(lr_schedule, lr, math.ceil(steps / per_epoch))
    generators = [torch.Generator().manual_seed(int(s) + 7919) for s in seeds]
    runs = len(seeds)
    out = torch.empty(runs, len(kept_steps[0]), sum(params[k][0].numel() for k in names),
                      dtype=params[names[0]].dtype)

    def snapshot(step: int) -> None:
        rows = [(i, kept.index(step)) for i, kept in enumerate(kept_steps) if step in kept]
        if rows:
            flat = torch.cat([params[k].detach().reshape(runs, -1) for k in names], dim=1)
            for i, j in rows:
                out[i, j] = flat[i]

    snapshot(0)
    step, epoch = 0, 0
    while step < steps:
        if schedule:
            for group in opt.param_groups:
                group["lr"] = schedule(epoch)
        order = torch.stack([torch.randperm(len(x), generator=g) for g in generators])
        epoch += 1
        for idx in order.split(batch_size, dim=1)[:per_epoch]:
            logits = forward(params, x[idx])
            loss = F.cross_entropy(logits.flatten(0, 1), y[idx].flatten(), reduction="sum")
            opt.zero_grad(set_to_none=True)
            (loss / idx.shape[1]).backward()
            opt.step()
            step += 1
            snapshot(step)
            if step == steps:
                break
        if on_epoch:
            on_epoch(epoch)
    return out, kept_steps if per_run else kept_steps[0]


def epoch_steps(n_examples: int, batch_size: int, drop_last: bool = False) -> int:
    """Optimizer steps in one epoch of `n_examples` in mini-batches of `batch_size` (without
    the last, partial one when `drop_last`)."""
    return n_examples // batch_size if drop_last else -(-n_examples // batch_size)


def _kept_steps(keep, runs: int, steps: int) -> tuple[bool, list[list[int]]]:
    """(given per run?, the sorted steps each run keeps), checked."""
    keep = list(keep)
    per_run = bool(keep) and hasattr(keep[0], "__iter__")
    lists = ([sorted({int(s) for s in k}) for k in keep] if per_run
             else [sorted({int(s) for s in keep})] * runs)
    if per_run and len(lists) != runs:
        raise ValueError(f"keep has {len(lists)} lists of steps for {runs} runs: give one per "
                         "run, or one list for all")
    if len({len(k) for k in lists}) > 1:
        raise ValueError("keep's lists must all name the same number of steps, got "
                         f"{sorted({len(k) for k in lists})}")
    if not lists[0] or any(k[0] < 0 or k[-1] > steps for k in lists):
        raise ValueError(f"keep must name steps from 0 to {steps}, got {keep}")
    return per_run, lists


def _optimizer(tensors: list[torch.Tensor], name: str, lr: float, momentum: float,
               nesterov: bool, weight_decay: float) -> torch.optim.Optimizer:
    if name == "adam":
        if momentum or nesterov:
            raise ValueError("momentum and nesterov are options of optimizer 'sgd', not 'adam'")
        return torch.optim.Adam(tensors, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        if nesterov and momentum <= 0:
            raise ValueError(f"nesterov needs a momentum above 0, got {momentum}")
        return torch.optim.SGD(tensors, lr=lr, momentum=momentum, nesterov=nesterov,
                               weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}: choose one of {', '.join(OPTIMIZERS)}")


def _schedule(name: str, lr: float, epochs: int) -> Callable[[int], float] | None:
    """The learning rate of each epoch (0-based), or None to leave the optimizer's alone."""
    if name == "constant":
        return None
    if name == "cosine":
        return lambda epoch: 0.5 * lr * (1.0 + math.cos(math.pi * epoch / epochs))
    raise ValueError(f"unknown lr_schedule {name!r}: choose one of {', '.join(LR_SCHEDULES)}")
