"""A few recent results of a function of tensors, kept by the identity of their inputs.

Every metric asks the task for Chamfer distances between the same behaviours (the runner
computes each behaviour once and hands the same tensor to every metric): the first computes
them, the others reuse them. An entry is found again for the same memory, shape, strides and
version counter (an in-place change bumps it), and holds its inputs alive, so that their memory
cannot be reused by another tensor while the entry exists.
"""

from collections import OrderedDict

import torch


def _key(t: torch.Tensor) -> tuple:
    return (t.data_ptr(), tuple(t.shape), t.stride(), t.dtype, t._version)


class Memo:
    def __init__(self, size: int = 8):
        self.size = size
        self._entries: OrderedDict[tuple, tuple[tuple[torch.Tensor, ...], object]] = \
            OrderedDict()

    def get(self, name: str, compute, *tensors: torch.Tensor):
        key = (name, *(_key(t) for t in tensors))
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key][1]
        value = compute(*tensors)
        self._entries[key] = (tensors, value)
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return value
