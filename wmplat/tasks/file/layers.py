"""Building a task file's architecture: a Sequential of allowed torch.nn layers, or a factory.

A `sequential` architecture may name only the torch.nn classes below, so a task file can never
run code of its own; `factory` imports a function the user installed. Each layer's role says
what it does to hidden units (tasks/file/symmetry.py): the derived symmetry depends on it.
"""

import importlib
from enum import Enum
from typing import Any

import torch
from torch import nn

from ...errors import ConfigError


class Role(Enum):
    AFFINE = "affine"          # Linear, Conv: makes units (axis 0 of its weight) of its inputs
    ELEMENTWISE = "elementwise"  # acts on each value alone: any reordering of units passes
    POOL = "pool"              # acts on each channel alone, over its positions
    BATCHNORM = "batchnorm"    # per-channel parameters and running statistics
    LAYERNORM = "layernorm"    # statistics over the last dims; parameters of their shape
    FLATTEN = "flatten"        # channels become blocks of h*w consecutive features
    OTHER = "other"            # mixes units in another way: ends any symmetry through it


LAYERS: dict[str, Role] = {
    "Linear": Role.AFFINE, "Conv1d": Role.AFFINE, "Conv2d": Role.AFFINE,
    **{name: Role.ELEMENTWISE for name in (
        "ReLU", "ReLU6", "GELU", "Tanh", "Sigmoid", "LeakyReLU", "ELU", "SELU", "CELU", "SiLU",
        "Mish", "Softplus", "Hardtanh", "Hardswish", "Hardsigmoid", "Dropout", "Identity")},
    **{name: Role.POOL for name in (
        "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool1d",
        "AdaptiveAvgPool2d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "Dropout1d", "Dropout2d")},
    "BatchNorm1d": Role.BATCHNORM, "BatchNorm2d": Role.BATCHNORM,
    "LayerNorm": Role.LAYERNORM,
    "Flatten": Role.FLATTEN,
    **{name: Role.OTHER for name in ("GroupNorm", "Unflatten", "Softmax", "LogSoftmax")},
}


def build_sequential(layers, source: str) -> nn.Sequential:
    """`layers`: schema.Layer items; `source` names the task file in errors."""
    modules = []
    for i, layer in enumerate(layers):
        try:
            modules.append(getattr(nn, layer.name)(*layer.args, **layer.kwargs))
        except Exception as exc:  # torch.nn constructors raise TypeError, ValueError, ...
            raise ConfigError(f"{source}: architecture.sequential.{i} ({layer.name}): "
                              f"{_one_line(exc)}") from None
    return _float32_on_cpu(nn.Sequential(*modules), f"{source}: architecture.sequential")


def build_factory(path: str, kwargs: dict[str, Any], source: str) -> nn.Module:
    """Import `package.module:function` and call it with `kwargs`."""
    module_name, function_name = path.split(":")
    where = f"{source}: architecture.factory {path!r}"
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # importing someone's package may raise anything
        raise ConfigError(f"{where}: cannot import {module_name!r} ({_one_line(exc)}); "
                          "install the package that provides it") from None
    factory = getattr(module, function_name, None)
    if not callable(factory):
        raise ConfigError(f"{where}: {module_name!r} has no function {function_name!r}")
    try:
        model = factory(**kwargs)
    except Exception as exc:  # a user's factory may raise anything
        raise ConfigError(f"{where} failed: {_one_line(exc)}") from None
    if not isinstance(model, nn.Module):
        raise ConfigError(f"{where} returned {type(model).__name__}, not a torch.nn.Module")
    return _float32_on_cpu(model, where)


def _float32_on_cpu(model: nn.Module, where: str) -> nn.Module:
    """Zoo weights are float32, evaluated on the CPU: a module of another kind is refused."""
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and (tensor.dtype != torch.float32
                                           or tensor.device.type != "cpu"):
            raise ConfigError(f"{where}: {name} is {str(tensor.dtype).removeprefix('torch.')} "
                              f"on {tensor.device}; a task's modules must be float32 on the CPU")
    return model


def trace_shapes(model: nn.Module, input_shape, source: str) -> list[tuple[int, ...]]:
    """The output shape of each child of a Sequential for one input of `input_shape`
    (batch of one, batch axis included), or for a factory model its output only. Errors name
    the layer that refuses its input."""
    x = torch.zeros(1, *input_shape)
    shapes = []
    children = list(model.children()) if isinstance(model, nn.Sequential) else [model]
    with torch.no_grad():
        for i, child in enumerate(children):
            try:
                x = child(x)
            except Exception as exc:  # a shape mismatch, from any layer
                where = f"architecture.sequential.{i} ({type(child).__name__})" \
                    if isinstance(model, nn.Sequential) else "architecture.factory"
                shape = [int(d) for d in x.shape]
                raise ConfigError(f"{source}: {where} does not accept its input of shape "
                                  f"{shape} (input_shape {list(input_shape)}): "
                                  f"{_one_line(exc)}") from None
            if not isinstance(x, torch.Tensor):
                raise ConfigError(f"{source}: the model returns {type(x).__name__}, not a "
                                  "tensor of logits")
            shapes.append(tuple(x.shape))
    return shapes


def _one_line(exc: Exception) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"
