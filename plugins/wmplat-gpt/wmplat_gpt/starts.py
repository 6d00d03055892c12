"""Where G.pt's samples start: the initialisation checkpoints of the train runs (each run's
earliest checkpoint: its step 0 where the zoo records one), or fresh initialisations drawn
with the architecture's own initialisation.

A method sees only a param spec, not how the task initialises a model, so fresh starts are
supported where the spec says it: an MLP whose parameters are fc1.weight [h1, in], fc1.bias
[h1], fc2.weight [h2, h1], ... (wmplat's and torch.nn.Linear's naming), initialised as
torch.nn.Linear does, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (`wmplat.init_mlp`), which is also
how G.pt's MNIST runs start.
"""

import torch

import wmplat


def mlp_sizes(spec) -> list[int] | None:
    """The layer widths of an fc{i} MLP param spec, or None when the spec is not one."""
    sizes = []
    for i in range(len(spec) // 2):
        (w_name, w_shape), (b_name, b_shape) = spec[2 * i], spec[2 * i + 1]
        if (w_name, b_name) != (f"fc{i + 1}.weight", f"fc{i + 1}.bias") or len(w_shape) != 2 \
                or tuple(b_shape) != (w_shape[0],) or (sizes and sizes[-1] != w_shape[1]):
            return None
        sizes = sizes or [w_shape[1]]
        sizes.append(w_shape[0])
    return sizes if sizes and len(spec) % 2 == 0 else None


def fresh_inits(zoo, sizes: list[int], n: int, g: torch.Generator) -> torch.Tensor:
    """n initialisations [n, num_params] of the MLP `sizes`, each from a seed drawn from g."""
    seeds = torch.randint(2**31 - 1, (n,), generator=g).tolist()
    return zoo.flatten(wmplat.init_mlp(sizes, seeds))


def cycled(rows: torch.Tensor, n: int, g: torch.Generator) -> torch.Tensor:
    """n of `rows` in a random order, each used once before any is used again."""
    rounds = -(-n // len(rows))
    return torch.cat([rows[torch.randperm(len(rows), generator=g)] for _ in range(rounds)])[:n]
