"""The network of the `digits-pdiff` task, as a population: an MLP with two LayerNorms.

64 -> fc1 -> LayerNorm(norm1) -> ReLU -> fc2 -> LayerNorm(norm2) -> ReLU -> fc3 -> 10 logits.
Every parameter is stacked over models, [n, *shape], and every function works on all n models
at once. The affine parameters of the two normalization layers (weight = gamma, bias = beta) are
the subset that p-diff trains and generates, like the last two BatchNorm layers of its ResNet-18.
"""

import torch
import torch.nn.functional as F

import wmplat

INPUTS, HIDDEN, CLASSES = 64, 128, 10
NORMS = ("norm1", "norm2")
SUBSET = tuple(f"{norm}.{kind}" for norm in NORMS for kind in ("weight", "bias"))
SPEC = [
    ("fc1.weight", (HIDDEN, INPUTS)), ("fc1.bias", (HIDDEN,)),
    ("norm1.weight", (HIDDEN,)), ("norm1.bias", (HIDDEN,)),
    ("fc2.weight", (HIDDEN, HIDDEN)), ("fc2.bias", (HIDDEN,)),
    ("norm2.weight", (HIDDEN,)), ("norm2.bias", (HIDDEN,)),
    ("fc3.weight", (CLASSES, HIDDEN)), ("fc3.bias", (CLASSES,)),
]


def forward(params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Inputs [m, 64] shared by all models, or [n, m, 64] per model -> logits [n, m, 10]."""
    h = x
    for i, norm in enumerate(NORMS, start=1):
        h = torch.matmul(h, params[f"fc{i}.weight"].transpose(1, 2))
        h = h + params[f"fc{i}.bias"].unsqueeze(1)
        h = F.layer_norm(h, (HIDDEN,))
        h = h * params[f"{norm}.weight"].unsqueeze(1) + params[f"{norm}.bias"].unsqueeze(1)
        h = h.relu()
    return torch.matmul(h, params["fc3.weight"].transpose(1, 2)) + params["fc3.bias"].unsqueeze(1)


def init_params(seed: int) -> dict[str, torch.Tensor]:
    """One model [1, *shape]: torch.nn.Linear's U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the
    linear layers, gamma 1 and beta 0 for the norms (torch.nn.LayerNorm's default)."""
    g = wmplat.random_generator(seed)
    params = {}
    for i, (fan_out, fan_in) in enumerate([(HIDDEN, INPUTS), (HIDDEN, HIDDEN), (CLASSES, HIDDEN)],
                                          start=1):
        bound = fan_in ** -0.5
        params[f"fc{i}.weight"] = (torch.rand(fan_out, fan_in, generator=g) * 2 - 1) * bound
        params[f"fc{i}.bias"] = (torch.rand(fan_out, generator=g) * 2 - 1) * bound
    for norm in NORMS:
        params[f"{norm}.weight"], params[f"{norm}.bias"] = torch.ones(HIDDEN), torch.zeros(HIDDEN)
    return {name: value.unsqueeze(0) for name, value in params.items()}


def flat(params: dict[str, torch.Tensor]) -> torch.Tensor:
    """Stacked params -> [n, num_params] in SPEC order."""
    n = params[SPEC[0][0]].shape[0]
    return torch.cat([params[name].reshape(n, -1) for name, _ in SPEC], dim=1)
