"""Weights as a sequence of tokens: one token per output unit of each layer.

A layer is the parameters sharing a name prefix (`conv2.weight`, `conv2.bias`); axis 0 of each
is the unit axis (output channel or neuron). A unit's token is its slice of every parameter of
the layer, flattened and concatenated (a kernel and its bias), padded with zeros to the widest
token. Tokenizing is one gather and detokenizing one index, so the round trip is exact.
"""

import math

import torch

from .errors import config_error


class Tokenizer:
    def __init__(self, spec: list[tuple[str, tuple[int, ...]]]):
        layers: dict[str, list[tuple[int, tuple[int, ...]]]] = {}
        offset = 0
        for name, shape in spec:
            if len(shape) == 0:
                raise config_error(f"parameter {name!r} is a scalar; tokens need a unit axis")
            layers.setdefault(name.rsplit(".", 1)[0], []).append((offset, tuple(shape)))
            offset += math.prod(shape)
        self.num_params = offset
        rows, layer_ids = [], []
        for layer_id, (layer, params) in enumerate(layers.items()):
            units = {shape[0] for _, shape in params}
            if len(units) != 1:
                raise config_error(f"layer {layer!r}: its parameters have different numbers "
                                   f"of units (axis 0): {sorted(units)}")
            for unit in range(units.pop()):
                rows.append(torch.cat([start + unit * math.prod(shape[1:])
                                       + torch.arange(math.prod(shape[1:]))
                                       for start, shape in params]))
                layer_ids.append(layer_id)
        self.layer_names = list(layers)
        self.width = max(len(r) for r in rows)
        # index[t, j] = flat position of slot j of token t, or num_params for padding
        self.index = torch.full((len(rows), self.width), self.num_params, dtype=torch.long)
        for t, row in enumerate(rows):
            self.index[t, :len(row)] = row
        self.mask = self.index < self.num_params                        # [tokens, width]
        self.layer = torch.tensor(layer_ids)                            # [tokens]
        self.slots = self.index[self.mask].argsort()                    # flat -> slot

    @property
    def num_tokens(self) -> int:
        return len(self.index)

    def tokenize(self, flat: torch.Tensor) -> torch.Tensor:
        """[n, num_params] -> [n, tokens, width], zeros in the padding."""
        padded = torch.cat([flat, flat.new_zeros(len(flat), 1)], dim=1)
        return padded[:, self.index]

    def detokenize(self, tokens: torch.Tensor) -> torch.Tensor:
        """[n, tokens, width] -> [n, num_params]; padding is ignored."""
        return tokens[:, self.mask][:, self.slots]
