"""What a dataset plugin registers: a task.

A task owns data, a functional architecture (its param spec), how to train a zoo of models, and
how to judge models: `behaviour` (what a model does on fixed inputs), `quality` (how good that is)
and `similarity` (how alike two models' behaviours are). Metrics ask the task for these rather
than assuming labels, so neural fields fit as well as classifiers.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from .engine.budget import blocks, step_size
from .zoo.params import ParamSpec, unflatten


@dataclass
class BuiltZoo:
    """A freshly trained zoo, before it is written to disk by `wmplat.zoo.write_zoo`."""

    weights: torch.Tensor                 # [num_models, num_params], float32
    models: list[dict[str, Any]]          # per model: id, run, step, split, seed, quality and
                                          # optionally metadata {name: value}
    provenance: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ShippedZoo:
    """A task's canonical zoo, shipped inside its package: installed into the cache on first use
    instead of training, so that every machine gets the same bytes (training depends on the
    machine's floating-point kernels)."""

    folder: Path              # holds manifest.json and the files it lists
    manifest_sha256: str      # pinned in code: a shipped manifest.json with another hash is refused


class Task:
    """What a dataset plugin registers: the data, the architecture (a param spec), how to judge
    a model (`behaviour`, `quality`, `similarity`) and, optionally, how to build its zoo."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    architecture: ClassVar[str] = ""
    license: ClassVar[str] = "unknown"
    quality_name: ClassVar[str] = "accuracy"
    # What `similarity` measures, in words: the report's axis and caption say it.
    similarity_name: ClassVar[str] = "similarity of behaviour"
    # Version of the zoo recipe: bump it when `build_zoo` changes, so cached zoos are rebuilt.
    version: ClassVar[str] = "1"
    # Settings for each baseline on this task, one leaderboard row each: {"noise": [{...}, ...]}.
    baseline_settings: ClassVar[dict[str, list[dict[str, Any]]]] = {}

    @property
    def param_spec(self) -> ParamSpec:
        raise NotImplementedError

    @property
    def permutation_groups(self) -> list:
        """The architecture's permutation symmetry, as `wmplat.PermutationGroup`s:
        hidden units that can be reordered without changing the function. Aligned distances
        and aligned baselines use it; the default, no symmetry, compares weights as they are."""
        return []

    def behaviour(self, weights: torch.Tensor) -> torch.Tensor:
        """[n, num_params] -> [n, ...]: what each model does on the task's fixed inputs."""
        raise NotImplementedError

    def quality(self, behaviour: torch.Tensor) -> torch.Tensor:
        """[n, ...] behaviour -> [n] quality, higher is better."""
        raise NotImplementedError

    def similarity(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Behaviours [na, ...] and [nb, ...] -> [na, nb] similarity, 1 for identical."""
        raise NotImplementedError

    def model_metadata(self, weights: torch.Tensor) -> dict[str, torch.Tensor]:
        """Optional: [n, num_params] -> {name: [n]}, the values this task records in its zoo's
        model records (`ModelRecord.metadata`, e.g. G.pt's "avg_test_loss"), computed for any
        weights, so that a method conditioned on one can check what its samples achieve. The
        default records nothing."""
        return {}

    def build_zoo(self) -> BuiltZoo:
        """Train this task's zoo locally; tasks whose zoos come only from the Hub omit it."""
        raise NotImplementedError(f"task {self.name!r} cannot build its zoo locally")

    @classmethod
    def shipped_zoo(cls) -> ShippedZoo | None:
        """The canonical zoo shipped with this task's package, installed instead of training
        it on first use; None (the default) trains it with `build_zoo`."""
        return None

    @classmethod
    def can_build_zoo(cls) -> bool:
        return cls.build_zoo is not Task.build_zoo


class ClassifierTask(Task):
    """A classifier: behaviour = predicted labels on a fixed test set, quality = accuracy,
    similarity = IoU of the sets of misclassified test examples (IoU of two empty sets is 1)."""

    similarity_name: ClassVar[str] = "IoU of errors"

    # Models evaluated at once in `behaviour`; None fits as many as `forward_bytes` says fit the
    # working set (8 MB, or the memory budget if smaller). A task whose forward needs more
    # scratch than that estimate says pins it here.
    behaviour_chunk: ClassVar[int | None] = None

    def test_data(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs [m, ...], labels [m]) of the fixed test set."""
        raise NotImplementedError

    def forward(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """Stacked params {name: [n, *shape]} and inputs [m, ...] -> logits [n, m, classes]."""
        raise NotImplementedError

    def behaviour(self, weights: torch.Tensor) -> torch.Tensor:
        """Predicted labels [n, m], computed (and returned) on the weights' device."""
        x, _ = self.test_data_on(weights.device)
        out = torch.empty(len(weights), len(x), dtype=torch.long, device=weights.device)
        with torch.no_grad():
            for start, stop in blocks(len(weights), self._models_per_forward(len(x))):
                params = unflatten(weights[start:stop], self.param_spec)
                torch.argmax(self.forward(params, x), dim=-1, out=out[start:stop])
        return out

    def forward_bytes(self, n_inputs: int) -> int:
        """Scratch of one model's forward on `n_inputs` inputs: for each layer (each parameter
        of two or more dimensions), its outputs before and after the nonlinearity, in float32.
        Exact for dense networks; convolutions need more (set `behaviour_chunk`)."""
        units = sum(shape[0] for _, shape in self.param_spec if len(shape) >= 2)
        return 8 * n_inputs * max(1, units)

    def _models_per_forward(self, n_inputs: int) -> int:
        return self.behaviour_chunk or step_size(self.forward_bytes(n_inputs))

    def test_data_on(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """`test_data()` on `device`: as it is where it already lies, else copied there once
        and kept, so that a forward with weights on a GPU finds its inputs beside them."""
        x, y = self.test_data()
        if x.device == device and y.device == device:
            return x, y
        copies = self.__dict__.setdefault("_test_data_copies", {})
        if device not in copies:
            copies[device] = (x.to(device), y.to(device))
        return copies[device]

    def errors(self, behaviour: torch.Tensor) -> torch.Tensor:
        """[n, m] bool: which test examples each model gets wrong (on behaviour's device)."""
        return behaviour != self.test_data_on(behaviour.device)[1]

    def quality(self, behaviour: torch.Tensor) -> torch.Tensor:
        return 1.0 - self.errors(behaviour).float().mean(dim=1)

    def similarity(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """IoU of error sets as one matrix product of 0/1 matrices: the counts are exact in
        float32 up to 2**24 test examples, so the ratios are correctly rounded."""
        ea, eb = self.errors(a).float(), self.errors(b).float()
        count_a, count_b = ea.sum(dim=1), eb.sum(dim=1)
        iou = ea @ eb.T
        iou.div_(torch.sub(count_a.unsqueeze(1), iou).add_(count_b))
        # The union is empty only for two empty error sets (0/0 above): identical behaviour.
        iou[(count_a == 0).nonzero(), (count_b == 0).nonzero().squeeze(1)] = 1.0
        return iou
