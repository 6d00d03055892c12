"""The flat weight order: a param spec is an ordered list of (name, shape) pairs.

A population of models is a tensor [n_models, num_params]; `flatten` and `unflatten` convert
between it and a dict of stacked tensors [n_models, *shape], in the order the spec gives.
"""

from collections.abc import Mapping, Sequence
from math import prod

import torch

ParamSpec = list[tuple[str, tuple[int, ...]]]


def normalize_spec(spec: Sequence[tuple[str, Sequence[int]]]) -> ParamSpec:
    return [(str(name), tuple(int(d) for d in shape)) for name, shape in spec]


def num_params(spec: ParamSpec) -> int:
    return sum(prod(shape) for _, shape in spec)


def flatten(params: Mapping[str, torch.Tensor], spec: ParamSpec) -> torch.Tensor:
    """Dict of [n, *shape] tensors -> [n, num_params], in the spec's order."""
    missing = [name for name, _ in spec if name not in params]
    if missing:
        raise ValueError(f"missing parameters {missing}")
    n = params[spec[0][0]].shape[0]
    parts = []
    for name, shape in spec:
        tensor = params[name]
        if tuple(tensor.shape) != (n, *shape):
            raise ValueError(f"parameter {name!r} has shape {list(tensor.shape)}, "
                             f"expected {[n, *shape]}")
        parts.append(tensor.reshape(n, -1))
    return torch.cat(parts, dim=1)


def unflatten(flat: torch.Tensor, spec: ParamSpec) -> dict[str, torch.Tensor]:
    """[n, num_params] -> dict of [n, *shape] views, in the spec's order."""
    if flat.ndim != 2 or flat.shape[1] != num_params(spec):
        raise ValueError(f"expected a tensor [n, {num_params(spec)}], got {list(flat.shape)}")
    out, start = {}, 0
    for name, shape in spec:
        size = prod(shape)
        out[name] = flat[:, start:start + size].reshape(flat.shape[0], *shape)
        start += size
    return out


def param_mask(spec: ParamSpec, names: Sequence[str]) -> torch.Tensor:
    """[num_params] float mask: 1 on the entries of the named parameters, 0 elsewhere."""
    known = [name for name, _ in spec]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise KeyError(f"unknown parameters {unknown}; the zoo has {known}")
    mask = torch.zeros(num_params(spec))
    start = 0
    for name, shape in spec:
        if name in names:
            mask[start:start + prod(shape)] = 1.0
        start += prod(shape)
    return mask
