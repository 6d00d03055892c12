"""What every imported checkpoint must be: exactly the task's keys and shapes, floating point,
finite and within MAX_WEIGHT. The first failure stops the import, naming the file and key."""

import torch

from ...errors import ZooError
from ..format import MAX_WEIGHT
from ..params import ParamSpec, flatten


def check_params(source: str, params: dict[str, torch.Tensor], spec: ParamSpec) -> torch.Tensor:
    """The checkpoint as one float32 row in the order of `spec`, or ZooError."""
    expected = dict(spec)
    if missing := [name for name in expected if name not in params]:
        raise ZooError(f"{source}: key {missing[0]!r} of the task is missing "
                       f"({len(missing)} missing; the checkpoint has {sorted(params)[:8]}); "
                       "map the checkpoint's names with --rename 'REGEX=REPL'")
    if extra := [name for name in params if name not in expected]:
        raise ZooError(f"{source}: key {extra[0]!r} is not a parameter of the task "
                       f"({len(extra)} extra; the task has {sorted(expected)[:8]}); map it "
                       "with --rename 'REGEX=REPL', or fix the task file's architecture")
    for name, shape in spec:
        _check_tensor(source, name, params[name], shape)
    return flatten({name: params[name].float().unsqueeze(0) for name, _ in spec}, spec)[0]


def _check_tensor(source: str, name: str, tensor, shape: tuple[int, ...]) -> None:
    if not isinstance(tensor, torch.Tensor):
        raise ZooError(f"{source}: key {name!r} holds a {type(tensor).__name__}, not a tensor")
    if tuple(tensor.shape) != tuple(shape):
        raise ZooError(f"{source}: key {name!r} has shape {list(tensor.shape)}, the task's "
                       f"architecture expects {list(shape)}; fix the task file's layers")
    if not tensor.is_floating_point():
        dtype = str(tensor.dtype).removeprefix("torch.")
        raise ZooError(f"{source}: key {name!r} has dtype {dtype}; weights must be floating "
                       "point: this is not a weight of the architecture")
    if not torch.isfinite(tensor).all():
        raise ZooError(f"{source}: key {name!r} contains NaN or infinite values; leave the "
                       "diverged checkpoint out of the source folder")
    if (tensor.abs() > MAX_WEIGHT).any():
        raise ZooError(f"{source}: key {name!r} has weights beyond |w| <= {MAX_WEIGHT:.0e} "
                       f"(largest {float(tensor.abs().max()):.0e}); the file is corrupt or "
                       "holds something else")
