"""What a method is given: the train split of a zoo, and a task that can only judge weights.

`TrainZoo` holds copies of the train split's weights and records and nothing of the heldout
split; it keeps no reference to the runner's `Zoo`. `TaskView` evaluates candidate weights
(behaviour, quality, similarity) but cannot build or train zoos, so a method cannot retrain the
heldout runs through it. What no in-process API can prevent (reading files, walking frames) the
runner detects instead: docs/trust.md.
"""

from collections.abc import Mapping
from typing import Any

import torch

from ..errors import ZooError
from ..schema import ModelRecord
from .params import ParamSpec, flatten, unflatten

HELDOUT_REFUSED = "the heldout split is not available to methods: they learn from the train " \
                  "split only"


class TaskView:
    """The judging half of a task: what a method may ask of it."""

    __slots__ = ("_task",)

    def __init__(self, task):
        self._task = task

    @property
    def name(self) -> str:
        return self._task.name

    @property
    def quality_name(self) -> str:
        return self._task.quality_name

    @property
    def param_spec(self) -> ParamSpec:
        return list(self._task.param_spec)

    @property
    def permutation_groups(self) -> list:
        return list(self._task.permutation_groups)

    def behaviour(self, weights: torch.Tensor) -> torch.Tensor:
        return self._task.behaviour(weights)

    def quality(self, behaviour: torch.Tensor) -> torch.Tensor:
        return self._task.quality(behaviour)

    def similarity(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self._task.similarity(a, b)

    def model_metadata(self, weights: torch.Tensor) -> dict[str, torch.Tensor]:
        return self._task.model_metadata(weights)

    def __repr__(self) -> str:
        return f"TaskView({self.name!r})"


class TrainZoo:
    """The train split of a zoo, as `Method.fit` receives it."""

    __slots__ = ("_name", "_weights", "_models", "_spec", "_task", "_provenance")

    def __init__(self, name: str, weights: torch.Tensor, models: list[ModelRecord],
                 spec: ParamSpec, task, provenance: Mapping[str, Any]):
        self._name = name
        self._weights = weights.clone()
        self._models = [m.model_copy() for m in models]
        self._spec = list(spec)
        self._task = TaskView(task)
        self._provenance = without_seeds(dict(provenance))

    @property
    def name(self) -> str:
        return self._name

    @property
    def num_params(self) -> int:
        return self._weights.shape[1]

    @property
    def param_spec(self) -> ParamSpec:
        return list(self._spec)

    @property
    def task(self) -> TaskView:
        return self._task

    @property
    def provenance(self) -> dict[str, Any]:
        """How the zoo was made, without the seeds: how the heldout runs were seeded is not
        the method's to know."""
        return without_seeds(self._provenance)

    def flatten(self, params: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return flatten(params, self._spec)

    def unflatten(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        return unflatten(flat, self._spec)

    def train_weights(self) -> torch.Tensor:
        """[num_train_models, num_params] float32 (a copy: methods may modify it)."""
        return self._weights.clone()

    def train_models(self) -> list[ModelRecord]:
        return [m.model_copy() for m in self._models]

    def heldout_weights(self):
        raise ZooError(HELDOUT_REFUSED)

    def heldout_models(self):
        raise ZooError(HELDOUT_REFUSED)

    def __repr__(self) -> str:
        return f"TrainZoo({self._name!r}, {len(self._models)} train models)"


def without_seeds(value: Any) -> Any:
    """A copy of a provenance value with every mapping entry whose key mentions a seed left
    out, at any depth."""
    if isinstance(value, Mapping):
        return {k: without_seeds(v) for k, v in value.items() if "seed" not in str(k).lower()}
    if isinstance(value, list | tuple):
        return [without_seeds(v) for v in value]
    return value
