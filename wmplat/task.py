"""What a dataset plugin registers: a task.

A task owns data, a functional architecture (its param spec), how to train a zoo of models, and
how to judge models: `behaviour` (what a model does on fixed inputs), `quality` (how good that is)
and `similarity` (how alike two models' behaviours are). Metrics ask the task for these rather
than assuming labels, so neural fields fit as well as classifiers.
"""

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from .params import ParamSpec, unflatten


@dataclass
class BuiltZoo:
    """A freshly trained zoo, before it is written to disk by `wmplat.zoo.write_zoo`."""

    weights: torch.Tensor                 # [num_models, num_params], float32
    models: list[dict[str, Any]]          # per model: id, run, step, split, seed, quality
    provenance: dict[str, Any] = field(default_factory=dict)


class Task:
    name: ClassVar[str]
    description: ClassVar[str] = ""
    architecture: ClassVar[str] = ""
    license: ClassVar[str] = "unknown"
    quality_name: ClassVar[str] = "accuracy"
    # Version of the zoo recipe: bump it when `build_zoo` changes, so cached zoos are rebuilt.
    version: ClassVar[str] = "1"
    # Settings for each baseline on this task, one leaderboard row each: {"noise": [{...}, ...]}.
    baseline_settings: ClassVar[dict[str, list[dict[str, Any]]]] = {}

    @property
    def param_spec(self) -> ParamSpec:
        raise NotImplementedError

    def behaviour(self, weights: torch.Tensor) -> torch.Tensor:
        """[n, num_params] -> [n, ...]: what each model does on the task's fixed inputs."""
        raise NotImplementedError

    def quality(self, behaviour: torch.Tensor) -> torch.Tensor:
        """[n, ...] behaviour -> [n] quality, higher is better."""
        raise NotImplementedError

    def similarity(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Behaviours [na, ...] and [nb, ...] -> [na, nb] similarity, 1 for identical."""
        raise NotImplementedError

    def build_zoo(self) -> BuiltZoo:
        """Train this task's zoo locally; tasks whose zoos come only from the Hub omit it."""
        raise NotImplementedError(f"task {self.name!r} cannot build its zoo locally")

    @classmethod
    def can_build_zoo(cls) -> bool:
        return cls.build_zoo is not Task.build_zoo


class ClassifierTask(Task):
    """A classifier: behaviour = predicted labels on a fixed test set, quality = accuracy,
    similarity = IoU of the sets of misclassified test examples (IoU of two empty sets is 1)."""

    # Models evaluated at once in `behaviour`; bounds memory to chunk x test examples x width.
    behaviour_chunk: ClassVar[int] = 256

    def test_data(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs [m, ...], labels [m]) of the fixed test set."""
        raise NotImplementedError

    def forward(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """Stacked params {name: [n, *shape]} and inputs [m, ...] -> logits [n, m, classes]."""
        raise NotImplementedError

    def behaviour(self, weights: torch.Tensor) -> torch.Tensor:
        x, _ = self.test_data()
        out = []
        with torch.no_grad():
            for chunk in weights.split(self.behaviour_chunk):
                out.append(self.forward(unflatten(chunk, self.param_spec), x).argmax(-1))
        return torch.cat(out) if out else torch.empty(0, len(x), dtype=torch.long)

    def errors(self, behaviour: torch.Tensor) -> torch.Tensor:
        """[n, m] bool: which test examples each model gets wrong."""
        return behaviour != self.test_data()[1]

    def quality(self, behaviour: torch.Tensor) -> torch.Tensor:
        return 1.0 - self.errors(behaviour).float().mean(dim=1)

    def similarity(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        ea, eb = self.errors(a).float(), self.errors(b).float()
        # Counts are exact in float32 up to 2**24 test examples.
        inter = ea @ eb.T
        union = ea.sum(1, keepdim=True) + eb.sum(1) - inter
        return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(inter))
