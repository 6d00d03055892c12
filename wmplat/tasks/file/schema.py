"""The task file: a classifier task described in YAML (docs/byoz.md#the-task-file).

A public, versioned contract. Every field is validated here, before anything is built or
loaded, and a bad one is reported as one line naming the file and the field.
"""

import re
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

import yaml
from pydantic import BeforeValidator, Discriminator, Field, Tag, field_validator, model_validator

from ...errors import ConfigError
from ...names import NAME_RULE, Name
from ...schema import COMMIT, StrictModel, is_relative_path, parse_versioned
from .layers import LAYERS

FACTORY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
DATA_SUFFIX = ".safetensors"
PLACEMENT = {"device", "dtype"}   # keyword arguments of torch.nn layers a task file may not set


class Layer(StrictModel):
    """One layer of a `sequential` architecture: a torch.nn class and its arguments."""

    name: str
    args: list[Any] = []
    kwargs: dict[str, Any] = {}


def _parse_layer(item: Any) -> Any:
    """`ReLU`, `{Conv2d: [1, 8, 3]}`, `{Conv2d: [1, 8, 3, {padding: 1}]}` (a trailing mapping
    holds keyword arguments) or `{Linear: {in_features: 72, out_features: 10}}`."""
    if isinstance(item, str):
        name, value = item, []
    elif isinstance(item, dict) and len(item) == 1:
        (name, value), = item.items()
    else:
        raise ValueError("a layer is `Name: [args]` (one key: a torch.nn class name), "
                         f"got {item!r}")
    if name not in LAYERS:
        raise ValueError(f"unknown layer {name!r}; a sequential architecture takes only these "
                         f"torch.nn classes: {', '.join(sorted(LAYERS))} (use `factory` for "
                         "anything else)")
    if value is None:
        value = []
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise ValueError(f"{name}: arguments must be a list (positional, optionally ending "
                         f"with a mapping of keyword arguments) or a mapping, got {value!r}")
    args, kwargs = (value[:-1], value[-1]) if value and isinstance(value[-1], dict) \
        else (value, {})
    for key in PLACEMENT & set(kwargs):
        raise ValueError(f"{name}: `{key}` is not for a task file: every layer is float32 on "
                         "the CPU")
    return {"name": name, "args": args, "kwargs": kwargs}


class Architecture(StrictModel):
    """Exactly one of `sequential` (torch.nn layers in order) and `factory` ("pkg.mod:fn",
    called with `kwargs`, returning a torch.nn.Module)."""

    sequential: list[Annotated[Layer, BeforeValidator(_parse_layer)]] | None = \
        Field(default=None, min_length=1)
    factory: str | None = None
    kwargs: dict[str, Any] | None = None

    @field_validator("factory")
    @classmethod
    def _import_path(cls, value: str | None) -> str | None:
        if value is not None and not FACTORY.match(value):
            raise ValueError(f"{value!r} is not an import path: write it as 'package.module:"
                             "function'")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> "Architecture":
        if (self.sequential is None) == (self.factory is None):
            raise ValueError("give exactly one of `sequential` (a list of torch.nn layers) "
                             "and `factory` ('package.module:function')")
        if self.kwargs is not None and self.factory is None:
            raise ValueError("`kwargs` goes with `factory`; a sequential layer takes its "
                             "keyword arguments in its own list")
        return self


class DatasetsSource(StrictModel):
    """A Hugging Face `datasets` data set, pinned to a commit."""

    path: str = Field(min_length=1)
    revision: str
    split: str = "test"
    input: str = Field(min_length=1)
    label: str = Field(min_length=1)
    transform: list[str] = []

    @field_validator("revision")
    @classmethod
    def _pinned(cls, value: str) -> str:
        if not COMMIT.match(value):
            raise ValueError(f"{value!r} is not a full commit: pin the data set to its 40-hex "
                             "commit (a branch or tag can change under the zoo)")
        return value

    @field_validator("transform")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        from .data import parse_transform

        for item in value:
            parse_transform(item)
        return value


class Data(StrictModel):
    """Exactly one of `file` (safetensors, relative to the task file) and `datasets`."""

    file: str | None = None
    datasets: DatasetsSource | None = None

    @field_validator("file")
    @classmethod
    def _relative(cls, value: str | None) -> str | None:
        if value is None:
            return value
        # the zoo's manifest lists the copy under this very path: the manifest's rule holds
        if not is_relative_path(value):
            raise ValueError(f"{value!r} must be a path inside the task file's folder, "
                             "relative to it, as names separated by '/'; in each, "
                             f"{NAME_RULE}")
        if PurePosixPath(value).suffix != DATA_SUFFIX:
            raise ValueError(f"{value!r}: the test data must be a {DATA_SUFFIX} file "
                             "(tensors `inputs` and `labels`)")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> "Data":
        if (self.file is None) == (self.datasets is None):
            raise ValueError("give exactly one of `file` (a safetensors file) and `datasets` "
                             "(a data set at a pinned commit)")
        return self


class GroupDeclaration(StrictModel):
    """A permutation group written out: units that can be reordered together, given as
    [parameter, axis] or [parameter, axis, block] (wmplat.PermutationGroup)."""

    name: str = Field(min_length=1)
    size: int = Field(gt=1)
    axes: list[tuple[str, int] | tuple[str, int, int]] = Field(min_length=1)


class TaskFile(StrictModel):
    schema_version: Literal[1]
    name: Name
    kind: Literal["classifier"]
    description: str = ""
    license: str = "unknown"
    architecture: Architecture
    input_shape: list[Annotated[int, Field(gt=0)]] = Field(min_length=1)
    data: Data
    symmetry: Annotated[
        Annotated[Literal["auto", "none"], Tag("word")]
        | Annotated[list[GroupDeclaration], Tag("groups")],
        Discriminator(lambda v: "word" if isinstance(v, str) else "groups")] = "auto"
    # Settings per baseline, one leaderboard row each ({noise: [{sigma: 0.02}]}); without it an
    # imported zoo uses the defaults its import derived (docs/byoz.md).
    baselines: dict[Name, list[dict[str, Any]]] | None = None


def read_task_file(path: Path) -> TaskFile:
    """Parse and validate a task file; any problem is a ConfigError naming the file and field."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such task file") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        reason = str(exc).replace("\n", " ")
        raise ConfigError(f"{path}: cannot read the task file ({reason})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a task file is a YAML mapping (schema_version, name, kind, "
                          "architecture, input_shape, data, symmetry)")
    return parse_versioned(TaskFile, data, str(path), ConfigError)
