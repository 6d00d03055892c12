"""A task file's test data: a safetensors file beside it, or a `datasets` data set at a pinned
commit (downloaded once, then read from the `datasets` cache).

Either way the task gets `inputs` float32 [m, *input_shape] and `labels` int64 [m], checked
here: the shapes agree, and every label is a class the model can output.
"""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from ...errors import ConfigError

TRANSFORMS = ("to_float", "scale:X", "normalize:MEAN,STD", "add_channel", "channels_first",
              "flatten")


def parse_transform(item: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The function a named transform stands for (docs/byoz.md lists them); ValueError for a
    name or argument it does not know."""
    name, _, arg = item.partition(":")
    if name in ("to_float", "add_channel", "channels_first", "flatten") and not arg:
        return {"to_float": lambda x: x.float(),
                "add_channel": lambda x: x.unsqueeze(1),
                "channels_first": lambda x: x.movedim(-1, 1),
                "flatten": lambda x: x.reshape(len(x), -1)}[name]
    if name == "scale" and arg:
        divisor = _number(arg, item)
        if divisor == 0:
            raise ValueError(f"transform {item!r}: cannot divide by 0")
        return lambda x: x / divisor
    if name == "normalize" and arg:
        parts = arg.split(",")
        if len(parts) != 2:
            raise ValueError(f"transform {item!r}: write normalize:MEAN,STD")
        mean, std = (_number(p, item) for p in parts)
        if std <= 0:
            raise ValueError(f"transform {item!r}: STD must be positive")
        return lambda x: (x - mean) / std
    raise ValueError(f"unknown transform {item!r}; known: {', '.join(TRANSFORMS)}")


def _number(text: str, item: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"transform {item!r}: {text!r} is not a number") from None


def load_file_data(path: Path, base: Path, source: str) -> tuple[torch.Tensor, torch.Tensor]:
    """`inputs` and `labels` from the safetensors file `path`, which must lead (through any
    links) inside `base`: the task file's folder, or the zoo folder that holds both."""
    where = f"{source}: data.file {path.name!r}"
    if not path.resolve().is_relative_to(base.resolve()):
        raise ConfigError(f"{where} leads outside the task file's folder (to {path.resolve()}); "
                          "put the data file in that folder")
    if not path.is_file():
        raise ConfigError(f"{where}: no such file {path}")
    try:
        tensors = load_file(path)
    except (SafetensorError, OSError, ValueError) as exc:
        raise ConfigError(f"{where}: not a readable safetensors file ({exc})") from None
    if set(tensors) != {"inputs", "labels"}:
        raise ConfigError(f"{where}: holds tensors {sorted(tensors)}; it must hold exactly "
                          "`inputs` (float32 [m, ...]) and `labels` (int64 [m])")
    return tensors["inputs"], tensors["labels"]


def load_datasets_data(spec, source: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The columns `spec.input` and `spec.label` of split `spec.split` of the data set at its
    pinned commit, with `spec.transform` applied to the inputs in order.

    The repo's files are fetched at the commit into the Hugging Face cache (once; then read
    from there, offline too), and `datasets` builds the split from that folder. Not
    `load_dataset(path, revision=...)`: when it cannot resolve a revision it falls back to
    the latest cached version of the data set, whatever its commit.
    """
    import datasets

    where = f"{source}: data.datasets {spec.path}@{spec.revision[:12]}"
    folder = _snapshot(spec, where)
    try:
        table = datasets.load_dataset(str(folder), split=spec.split)
    except Exception as exc:  # datasets raises many kinds: no data files, unknown split, ...
        raise ConfigError(f"{where}: cannot load split {spec.split!r} "
                          f"({type(exc).__name__}: {' '.join(str(exc).split())})") from None
    missing = [c for c in (spec.input, spec.label) if c not in table.column_names]
    if missing:
        raise ConfigError(f"{where}: no column {missing[0]!r} (columns: "
                          f"{', '.join(table.column_names)})")
    table = table.with_format("numpy")
    try:
        inputs = torch.from_numpy(np.ascontiguousarray(np.stack(table[spec.input])))
        labels = torch.from_numpy(np.ascontiguousarray(table[spec.label]))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: column {spec.input!r} or {spec.label!r} is not an array "
                          f"of numbers of one shape ({exc})") from None
    if not labels.is_floating_point() and labels.dtype != torch.bool:
        labels = labels.long()    # class labels of any integer type: ClassLabel is int64
    for item in spec.transform:
        inputs = parse_transform(item)(inputs)
    return inputs, labels


def _snapshot(spec, where: str) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    from ...hub.client import hub_errors

    try:
        return Path(snapshot_download(spec.path, repo_type="dataset", revision=spec.revision,
                                      local_files_only=True))
    except LocalEntryNotFoundError:
        pass
    try:
        with hub_errors(f"fetching {where}"):
            return Path(snapshot_download(spec.path, repo_type="dataset",
                                          revision=spec.revision))
    except LocalEntryNotFoundError:
        raise ConfigError(f"{where} is not in the Hugging Face cache and the Hub cannot be "
                          "reached; load it once where the Hub is reachable") from None


def check_data(inputs: torch.Tensor, labels: torch.Tensor, input_shape, classes: int,
               source: str) -> None:
    """The test data suits the task: float32 inputs of `input_shape`, one int64 label each,
    every label a class 0..classes-1 of the model's output."""
    if inputs.dtype != torch.float32:
        raise ConfigError(f"{source}: data: inputs are {_dtype(inputs)}, not float32 (for a "
                          "datasets source, add the transform to_float)")
    if tuple(inputs.shape[1:]) != tuple(input_shape) or inputs.ndim < 2 or not len(inputs):
        raise ConfigError(f"{source}: data: inputs have shape {list(inputs.shape)}, expected "
                          f"[m, {', '.join(str(d) for d in input_shape)}] (input_shape)")
    if labels.dtype != torch.int64:
        raise ConfigError(f"{source}: data: labels are {_dtype(labels)}, not int64")
    if labels.shape != (len(inputs),):
        raise ConfigError(f"{source}: data: labels have shape {list(labels.shape)}, expected "
                          f"[{len(inputs)}]: one label per input")
    if not torch.isfinite(inputs).all():
        raise ConfigError(f"{source}: data: inputs contain NaN or infinite values")
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= classes:
        raise ConfigError(f"{source}: data: labels range over {low}..{high}, but the model "
                          f"outputs {classes} classes (0..{classes - 1})")


def _dtype(tensor: torch.Tensor) -> str:
    return str(tensor.dtype).removeprefix("torch.")
