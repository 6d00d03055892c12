"""A flat parameter vector as G.pt's tokens: each tensor of the param spec cut into chunks of
at most `chunk` values, never mixing two tensors (G.pt's "chunk_within_layer" split). For the
784-10-10 MLP and chunks of 1,000: fc1.weight gives 8 tokens (7 x 1000 + 840), fc1.bias,
fc2.weight and fc2.bias one each, 11 in all."""

from math import prod

import torch


def token_sizes(spec, chunk: int) -> list[int]:
    """The length of each token, in the flat order of `spec` [(name, shape), ...]."""
    sizes = []
    for _, shape in spec:
        values = prod(shape)
        sizes += [chunk] * (values // chunk) + ([values % chunk] if values % chunk else [])
    return sizes


def split_tokens(flat: torch.Tensor, sizes: list[int]) -> list[torch.Tensor]:
    """[n, num_params] -> one [n, size] tensor per token."""
    return list(torch.split(flat, sizes, dim=1))


def join_tokens(tokens: list[torch.Tensor]) -> torch.Tensor:
    """The inverse of `split_tokens`: the flat vectors [n, num_params]."""
    return torch.cat(tokens, dim=1)
