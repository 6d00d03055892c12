"""Small 1-D CNNs as a population: stacked weights, one batched computation.

Three convolutions (ReLU after each), a global average pool over positions and a linear
layer to ten logits. Parameters are named like torch.nn.Conv1d / torch.nn.Linear with a
leading model dimension: `conv{i}.weight` [n, out, in, k], `conv{i}.bias` [n, out],
`fc.weight` [n, 10, c], `fc.bias` [n, 10]; every function works on all n models at once.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

import wmplat


@dataclass(frozen=True)
class Conv:
    out: int
    kernel: int
    stride: int


CONVS = (Conv(8, 5, 2), Conv(16, 5, 2), Conv(20, 5, 2))
IN_CHANNELS, CLASSES = 1, 10


def cnn_spec(convs: Sequence[Conv] = CONVS) -> list[tuple[str, tuple[int, ...]]]:
    spec, channels = [], IN_CHANNELS
    for i, conv in enumerate(convs, start=1):
        spec += [(f"conv{i}.weight", (conv.out, channels, conv.kernel)),
                 (f"conv{i}.bias", (conv.out,))]
        channels = conv.out
    return spec + [("fc.weight", (CLASSES, channels)), ("fc.bias", (CLASSES,))]


def cnn_permutation_groups(convs: Sequence[Conv] = CONVS) -> list:
    """Each convolution's output channels can be reordered, with the next layer's input
    channels, without changing the function (the average pool treats channels alike)."""
    names = [f"conv{i}" for i in range(1, len(convs) + 1)] + ["fc"]
    return [wmplat.PermutationGroup(f"{layer}.channels", conv.out,
                                    ((f"{layer}.weight", 0), (f"{layer}.bias", 0),
                                     (f"{after}.weight", 1)))
            for layer, after, conv in zip(names, names[1:], convs, strict=False)]


def cnn_forward(params: dict[str, torch.Tensor], x: torch.Tensor,
                convs: Sequence[Conv] = CONVS) -> torch.Tensor:
    """Inputs [m, length] shared by all models, or [n, m, length] per model -> [n, m, 10].

    The n models run as one grouped convolution: channels are laid out model by model.
    """
    n = params["fc.weight"].shape[0]
    h = x.unsqueeze(1).expand(-1, n, -1) if x.ndim == 2 else x.transpose(0, 1)
    for i, conv in enumerate(convs, start=1):
        w, b = params[f"conv{i}.weight"], params[f"conv{i}.bias"]
        h = F.conv1d(h, w.flatten(0, 1), b.flatten(), stride=conv.stride,
                     padding=conv.kernel // 2, groups=n).relu_()
    pooled = h.mean(dim=2).reshape(len(h), n, -1).transpose(0, 1)       # [n, m, channels]
    return torch.baddbmm(params["fc.bias"].unsqueeze(1), pooled,
                         params["fc.weight"].transpose(1, 2))


def init_cnn(seeds: Sequence[int], convs: Sequence[Conv] = CONVS) -> dict[str, torch.Tensor]:
    """PyTorch's default initialisation of Conv1d and Linear, U(-1/sqrt(fan_in),
    1/sqrt(fan_in)) for weights and biases, from each run's own seed."""
    spec = cnn_spec(convs)
    per_run = []
    for seed in seeds:
        g = wmplat.random_generator(seed)
        run = {}
        for (wname, wshape), (bname, bshape) in zip(spec[::2], spec[1::2], strict=True):
            bound = (wshape[1] * (wshape[2] if len(wshape) > 2 else 1)) ** -0.5
            run[wname] = (torch.rand(wshape, generator=g) * 2 - 1) * bound
            run[bname] = (torch.rand(bshape, generator=g) * 2 - 1) * bound
        per_run.append(run)
    return {name: torch.stack([r[name] for r in per_run]) for name, _ in spec}


def train_cnns(x: torch.Tensor, y: torch.Tensor, seeds: Sequence[int], epochs: int,
               batch_size: int, lr: float, keep: Sequence[int], on_epoch=None,
               convs: Sequence[Conv] = CONVS) -> tuple[torch.Tensor, list[int]]:
    """Train one CNN per seed, all together (`wmplat.train_stacked`), with Adam on
    mini-batches in each run's own order. Returns the checkpoints after the epochs in `keep`
    (1-based), flat [runs, len(keep), num_params], and their step numbers (optimizer steps
    so far)."""
    per_epoch = wmplat.epoch_steps(len(x), batch_size)
    return wmplat.train_stacked(lambda params, xb: cnn_forward(params, xb, convs),
                                init_cnn(seeds, convs), x, y, seeds, steps=epochs * per_epoch,
                                batch_size=batch_size, lr=lr,
                                keep=[epoch * per_epoch for epoch in keep], on_epoch=on_epoch)
