"""`symmetry: auto`: the permutation groups of a Sequential, derived layer by layer.

The units an affine layer makes (Linear's output features, a convolution's output channels)
can be reordered, with everything that follows them, as long as every layer in between treats
units alike: elementwise activations, dropout, pooling (per channel), BatchNorm (its weight,
bias and running statistics move with their channel), LayerNorm (statistics over all units do
not change; its weight and bias move with them) and Flatten (a channel becomes a block of h*w
consecutive features, so the next Linear's input columns move in blocks). The next affine layer
takes them in (its weight's axis 1) and closes the group. Any other layer, or an affine layer
that takes its inputs along another axis, ends the group without declaring it: a missed
symmetry only makes aligned distances larger, a wrong one would make them meaningless.
"""

from math import prod

from torch import nn

from ...engine.alignment import PermutationGroup
from .layers import LAYERS, Role


class _Units:
    """The units of the group being followed: their number, the (parameter, axis[, block])
    entries that move with them so far, and how many consecutive features each one spans."""

    def __init__(self, layer: int, size: int, axes: list[tuple]):
        self.name = f"{layer}.out"   # the units layer `layer` outputs
        self.size, self.axes, self.block = size, axes, 1

    def entry(self, name: str, axis: int) -> tuple:
        return (name, axis) if self.block == 1 else (name, axis, self.block)


def sequential_groups(model: nn.Sequential, input_shape, shapes,
                      names: set[str]) -> list[PermutationGroup]:
    """The groups of `model`, given each child's output shape (`layers.trace_shapes`) and the
    names of the task's parameters and floating buffers."""
    groups: list[PermutationGroup] = []
    units: _Units | None = None
    in_shape = (1, *input_shape)
    for i, (child, out_shape) in enumerate(zip(model.children(), shapes, strict=True)):
        role = LAYERS.get(type(child).__name__, Role.OTHER)
        if role is Role.AFFINE:
            if units is not None and _takes_units_in(child, in_shape):
                groups.append(PermutationGroup(
                    units.name, units.size, (*units.axes, units.entry(f"{i}.weight", 1))))
            units = _makes_units(child, i, in_shape, names)
        elif units is None or role is Role.ELEMENTWISE:
            pass
        elif role is Role.POOL:
            units = units if len(in_shape) >= 3 else None
        elif role is Role.BATCHNORM:
            units.axes += [units.entry(f"{i}.{p}", 0) for p in
                           ("weight", "bias", "running_mean", "running_var") if f"{i}.{p}" in names]
        elif role is Role.LAYERNORM:
            axis = len(child.normalized_shape) - len(in_shape) + 1   # of units, in its weight
            if axis >= 0:
                units.axes += [units.entry(f"{i}.{p}", axis) for p in ("weight", "bias")
                               if f"{i}.{p}" in names]
        elif role is Role.FLATTEN and child.start_dim == 1 and child.end_dim == -1:
            units.block *= prod(in_shape[2:])
        else:
            units = None
        in_shape = out_shape
    return [g for g in groups if g.size > 1]


def _takes_units_in(layer: nn.Module, in_shape) -> bool:
    """Whether `layer` reads its input's axis 1 as its weight's axis 1."""
    if isinstance(layer, nn.Linear):
        return len(in_shape) == 2
    return layer.groups == 1 and len(in_shape) == (3 if isinstance(layer, nn.Conv1d) else 4)


def _makes_units(layer: nn.Module, i: int, in_shape, names: set[str]) -> _Units | None:
    """The units `layer` outputs along axis 1 of its output, or None if they lie elsewhere."""
    if isinstance(layer, nn.Linear):
        if len(in_shape) != 2:
            return None
        size = layer.out_features
    else:
        if layer.groups != 1:
            return None
        size = layer.out_channels
    return _Units(i, size, [(f"{i}.{p}", 0) for p in ("weight", "bias") if f"{i}.{p}" in names])
