"""Weights as tokens, as HyperDiffusion gives them to G.pt's transformer ("layer_by_layer"):
one token per parameter tensor, the tensor flattened in the zoo's flat order, so tokens have
different lengths (a weight matrix, its bias). With `chunk`, a tensor longer than `chunk` is
cut into pieces of `chunk` values and a shorter remainder (G.pt's "chunk_within_layer"), never
mixing two tensors. A token is a slice of the flat vector, so the round trip is exact.
"""

from math import prod

import torch


class TokenLayout:
    def __init__(self, spec: list[tuple[str, tuple[int, ...]]], chunk: int | None = None):
        self.names: list[str] = []
        self.sizes: list[int] = []
        for name, shape in spec:
            size = prod(shape)
            if size == 0:
                continue            # no values, so no token
            step = size if chunk is None else chunk
            for start in range(0, size, step):
                stop = min(start + step, size)
                self.names.append(name if stop - start == size else f"{name}[{start}:{stop}]")
                self.sizes.append(stop - start)
        self.num_params = sum(self.sizes)

    @property
    def num_tokens(self) -> int:
        return len(self.sizes)

    def split(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """[n, num_params] -> one [n, size] view per token, in order."""
        return list(torch.split(flat, self.sizes, dim=1))

    def join(self, tokens: list[torch.Tensor]) -> torch.Tensor:
        """The inverse of `split`: [n, num_params]."""
        return torch.cat(tokens, dim=1)
