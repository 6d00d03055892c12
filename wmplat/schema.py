"""Every on-disk format wmplat reads or writes, as pydantic models with a schema version.

Zoo manifests (`manifest.json`), the zoo registry (`registry.yaml`) and results (`result.json`,
one leaderboard row each), and the rows aggregated over seeds that the leaderboard computes from
them. Readers validate as strictly as writers and name the file and the field at fault.
"""

import json
import math
import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_serializer,
    model_validator,
)

from .measures import STANDARD, SUMMARIES
from .names import NAME_RULE, Name, is_name, name_error

SCHEMA_VERSION = 1
SHA256 = re.compile(r"^[0-9a-f]{64}$")
COMMIT = re.compile(r"^[0-9a-f]{40}$")
CONFIG_HASH = re.compile(r"^[0-9a-f]{12}$")
M = TypeVar("M", bound=BaseModel)


def _sha256(value: str) -> str:
    if not SHA256.match(value):
        raise ValueError("must be 64 lowercase hex digits")
    return value


Sha256 = Annotated[str, AfterValidator(_sha256)]


def _config_hash(value: str) -> str:
    if not CONFIG_HASH.match(value):
        raise ValueError("must be 12 lowercase hex digits")
    return value


ConfigHash = Annotated[str, AfterValidator(_config_hash)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


def parse_model(model: type[M], data: Any, source: str, error: type[Exception]) -> M:
    """Validate `data`; on failure raise `error` naming `source` and each bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}"
            for e in exc.errors()
        )
        raise error(f"{source}: {problems}") from None


def check_schema_version(data: Any, source: str, error: type[Exception]) -> None:
    version = data.get("schema_version") if isinstance(data, dict) else None
    if isinstance(version, int) and version > SCHEMA_VERSION:
        raise error(f"{source}: schema_version {version} is newer than this wmplat reads "
                    f"({SCHEMA_VERSION}); upgrade wmplat")


def parse_versioned(model: type[M], data: Any, source: str, error: type[Exception]) -> M:
    """`parse_model` after `check_schema_version`: a file of a newer schema says so first."""
    check_schema_version(data, source, error)
    return parse_model(model, data, source, error)


def read_json_model(path: Path, model: type[M], what: str, error: type[Exception]) -> M:
    """A versioned JSON file: unreadable or malformed -> `error` naming the path and `what`."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read {what} ({exc})") from None
    return parse_versioned(model, data, str(path), error)


# --- zoos ----------------------------------------------------------------------------------

class ParamRecord(StrictModel):
    name: str
    shape: list[int]


METADATA_KEY_CHARS = 64


class ModelRecord(StrictModel):
    id: str
    run: int
    step: int
    split: Literal["train", "heldout"]
    seed: int
    quality: float
    # What else was measured of this checkpoint, by name: G.pt's zoos record each checkpoint's
    # train and test loss and error ("avg_test_loss", ...), which conditional methods ask for.
    # Absent from the manifest when empty (zoos of earlier versions have none).
    metadata: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _finite_values(self) -> "ModelRecord":
        # JSON readers accept NaN and Infinity; a zoo's statistics must not
        values = {"quality": self.quality, **{f"metadata[{k!r}]": v
                                              for k, v in self.metadata.items()}}
        for name, value in values.items():
            if not math.isfinite(value):
                raise ValueError(f"model {self.id!r}: {name} must be a finite number, "
                                 f"got {value}")
        if bad := [k for k in self.metadata if not 0 < len(k) <= METADATA_KEY_CHARS]:
            raise ValueError(f"model {self.id!r}: metadata names must have 1 to "
                             f"{METADATA_KEY_CHARS} characters, got {bad[0]!r}")
        return self


def is_relative_path(value: str) -> bool:
    """Names separated by '/': a path inside a folder, whatever the system (no '..', no
    absolute path, no backslash, no empty part)."""
    return all(is_name(part) for part in value.split("/"))


def _inside_zoo(value: str) -> str:
    if not is_relative_path(value):
        raise ValueError(f"{value!r} is not a path inside the zoo folder: write it relative "
                         f"to the folder, as names separated by '/'; in each, {NAME_RULE}")
    return value


class FileRecord(StrictModel):
    path: str
    sha256: Sha256

    @field_validator("path")
    @classmethod
    def _inside(cls, value: str) -> str:
        return _inside_zoo(value)


class ZooManifest(StrictModel):
    schema_version: Literal[1]
    name: Name
    task: Name
    architecture: str
    param_spec: list[ParamRecord] = Field(min_length=1)
    models: list[ModelRecord] = Field(min_length=1)
    files: list[FileRecord] = Field(min_length=1)
    license: str
    provenance: dict[str, Any]
    # A zoo whose task is described by a task file (docs/byoz.md) carries it: its path in the
    # folder, listed in `files`. Absent for a zoo of a registered task.
    task_file: str | None = None

    @field_validator("task_file")
    @classmethod
    def _task_file_inside(cls, value: str | None) -> str | None:
        return value if value is None else _inside_zoo(value)

    @model_validator(mode="after")
    def _consistent(self) -> "ZooManifest":
        if self.task_file is not None and self.task_file not in {f.path for f in self.files}:
            raise ValueError(f"task_file {self.task_file!r} must be listed in files, with its "
                             "sha256")
        ids = [m.id for m in self.models]
        if len(set(ids)) != len(ids):
            raise ValueError("model ids are not unique")
        train_runs = {m.run for m in self.models if m.split == "train"}
        heldout_runs = {m.run for m in self.models if m.split == "heldout"}
        if not train_runs or not heldout_runs:
            raise ValueError("a zoo needs models in both splits, train and heldout")
        if shared := train_runs & heldout_runs:
            raise ValueError(f"runs {sorted(shared)[:5]} appear in both splits; "
                             "zoos are split by training run")
        return self


# --- the zoo registry ----------------------------------------------------------------------

# The task name of a registry entry whose zoo carries its own task file (docs/byoz.md).
FILE_TASK = "module"


class ZooEntry(StrictModel):
    source: Literal["local", "hub"]
    task: Name            # a registered task, or FILE_TASK: the one the zoo's task file defines
    description: str = ""
    license: str | None = None
    repo_id: str | None = None
    repo_type: Literal["dataset", "model"] = "dataset"
    revision: str | None = None

    @model_validator(mode="after")
    def _hub_is_pinned(self) -> "ZooEntry":
        if self.source == "hub":
            if not self.repo_id:
                raise ValueError("a hub zoo needs repo_id")
            if not self.revision or not COMMIT.match(self.revision):
                raise ValueError("a hub zoo needs revision: a full 40-hex commit, never a branch")
        return self


class ZooRegistryFile(StrictModel):
    schema_version: Literal[1]
    zoos: dict[str, ZooEntry]

    @field_validator("zoos")
    @classmethod
    def _names(cls, zoos: dict[str, ZooEntry]) -> dict[str, ZooEntry]:
        # checked here rather than as dict[Name, ...], which would report the key's location
        # as `zoos.NAME.[key]`
        if problems := [p for name in zoos if (p := name_error("zoo", name))]:
            raise ValueError("; ".join(problems))
        return zoos


# --- results -------------------------------------------------------------------------------

class _MetricsBase(BaseModel):
    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, float | None] = Field(init=False)


_METRIC_TYPES = {"number": float | None, "interval": tuple[float, float] | None}

# The standard metrics are the standard values of wmplat/measures.py, in its order: each a field
# (null when a result lacks it); any other summary value, wmplat's or a plugin's, is an extra.
Metrics = create_model(
    "Metrics", __base__=_MetricsBase, __module__=__name__,
    __doc__="The standard metrics (null when a result lacks one) plus any plugin metric by name.",
    **{name: (_METRIC_TYPES[SUMMARIES[name].format], None) for name in STANDARD})


class Environment(StrictModel):
    wmplat: str
    torch: str
    python: str
    # Where the row was computed (`--device`: "cpu", "cuda:0"); None in rows written before
    # it was recorded, which are then dumped without it, byte for byte as before.
    device: str | None = None

    @model_serializer(mode="wrap")
    def _without_unrecorded_device(self, dump):
        data = dump(self)
        if self.device is None:
            data.pop("device", None)
        return data


Verdict = Literal["novel", "interpolates", "memorizes", "degraded", "no-power", "invalid"]


class Result(StrictModel):
    """One evaluation of one (method, zoo, seed, config): one leaderboard row."""

    schema_version: Literal[1] = SCHEMA_VERSION
    method: Name
    kind: Literal["method", "baseline", "reference"]
    method_version: str | None
    zoo: Name
    zoo_revision: Name | None   # `local-` + 12 hex digits, or a Hub commit
    task: Name
    n_samples: int
    seed: int | None
    config: dict[str, Any]
    config_hash: ConfigHash
    metrics: Metrics
    verdict: Verdict | None = None
    environment: Environment
    created_at: datetime
    wall_seconds: float


# --- rows aggregated over seeds: computed on reading, never stored (report/aggregate.py) -----

NO_VERDICT = "none"     # how `verdicts` counts the rows that have no verdict
VERDICTS = (*get_args(Verdict), NO_VERDICT)
# the metrics an aggregate always carries (null when no seed has a value): the numeric
# standard ones
AGGREGATED_STANDARD = tuple(name for name in STANDARD if SUMMARIES[name].format == "number")
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class MetricAggregate(StrictModel):
    """One metric over the seeds where it is not null."""

    mean: FiniteFloat
    std: FiniteFloat | None                         # sample standard deviation (ddof 1)
    n: int = Field(ge=1)                            # how many seeds have a value
    ci: tuple[FiniteFloat, FiniteFloat] | None      # 95% Student-t interval of the mean

    @model_validator(mode="after")
    def _consistent(self) -> "MetricAggregate":
        if (self.std is None) != (self.n == 1) or (self.ci is None) != (self.n == 1):
            raise ValueError("std and ci are null exactly when n is 1")
        if self.ci is not None and not self.ci[0] <= self.mean <= self.ci[1]:
            raise ValueError(f"ci {list(self.ci)} does not contain the mean {self.mean}")
        return self


class SeedAggregate(StrictModel):
    """The rows of one (zoo, revision, method, config, sample count, method version) that
    differ only in their seed, summarised: one row of `wmplat leaderboard --aggregate seeds`.
    A reference row, which has no seed, is an aggregate of itself."""

    schema_version: Literal[1] = SCHEMA_VERSION
    aggregate: Literal["seeds"] = "seeds"
    interval: Literal["t95"] = "t95"
    method: Name
    kind: Literal["method", "baseline", "reference"]
    method_version: str | None
    zoo: Name
    zoo_revision: Name | None
    task: Name
    n_samples: int
    config: dict[str, Any]
    config_hash: ConfigHash
    n_seeds: int = Field(ge=1)
    seeds: list[int | None] = Field(min_length=1)   # [null] for a reference row
    metrics: dict[str, MetricAggregate | None]
    verdicts: dict[str, int]                        # {verdict or "none": how many seeds}

    @model_validator(mode="after")
    def _consistent(self) -> "SeedAggregate":
        if self.n_seeds != len(self.seeds):
            raise ValueError(f"n_seeds is {self.n_seeds} but seeds lists {len(self.seeds)}")
        if (self.seeds == [None]) != (self.kind == "reference"):
            raise ValueError("seeds is [null] exactly for a reference row")
        if None not in self.seeds and self.seeds != sorted(set(self.seeds)):
            raise ValueError("seeds must be distinct and sorted")
        if missing := [m for m in AGGREGATED_STANDARD if m not in self.metrics]:
            raise ValueError(f"metrics lacks {missing} (null, never absent)")
        if over := [m for m, a in self.metrics.items() if a is not None and a.n > self.n_seeds]:
            raise ValueError(f"metrics {over} count more seeds than n_seeds")
        if unknown := [v for v in self.verdicts if v not in VERDICTS]:
            raise ValueError(f"verdicts {unknown} are not among {list(VERDICTS)}")
        if any(c < 1 for c in self.verdicts.values()) or \
                sum(self.verdicts.values()) != self.n_seeds:
            raise ValueError("verdicts must count each seed once (positive counts summing to "
                             "n_seeds)")
        return self


# --- a row's figures (figures.json beside result.json) -------------------------------------

FIGURE_CAPTION_MAX = 2000


class FigureRecord(StrictModel):
    """One figure a plugin returned for the row: its file is figures/NAME.png."""

    name: Name
    caption: str = Field(min_length=1, max_length=FIGURE_CAPTION_MAX)
    kind: Literal["metric", "method", "baseline"]     # what made it
    producer: Name                                   # the metric's or the method's name
    sha256: Sha256


class FigureIndex(StrictModel):
    schema_version: Literal[1] = SCHEMA_VERSION
    figures: list[FigureRecord] = Field(min_length=1)

    @field_validator("figures")
    @classmethod
    def _distinct(cls, figures: list[FigureRecord]) -> list[FigureRecord]:
        names = [f.name.lower() for f in figures]
        if len(set(names)) != len(names):
            raise ValueError("figure names are not distinct (ignoring case)")
        return figures
