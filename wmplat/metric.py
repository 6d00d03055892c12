"""What a metric plugin subclasses, and the evaluation context every metric receives.

The context holds the samples, the zoo and its task, and the behaviour of samples, training and
heldout models, computed once and shared: ten metrics never mean ten forward passes. The
behaviour is computed on the evaluation's device (`--device`) and kept on the CPU; a metric may
do its heavy work on `ctx.device` and returns CPU tensors.
"""

from dataclasses import dataclass, field
from typing import ClassVar, Literal

import torch

from .engine.device import CPU
from .errors import PluginError
from .figure import Figure
from .zoo.format import independent_units

Which = Literal["samples", "train", "heldout"]


@dataclass
class MetricValues:
    per_sample: dict[str, torch.Tensor] = field(default_factory=dict)   # name -> [n_samples]
    summary: dict[str, float | None] = field(default_factory=dict)       # name -> leaderboard value
    figures: list[Figure] = field(default_factory=list)                  # for the HTML report


class Metric:
    """Scores a set of sampled models against the zoo.

    `per_sample` and `summary` list the names `compute` returns; summary names become leaderboard
    columns (the standard ones, such as `accuracy_mean`, fill the schema's fields).
    """

    name: ClassVar[str]
    per_sample: ClassVar[tuple[str, ...]] = ()
    summary: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def applies_to(cls, task) -> bool:
        """Whether this metric scores models of `task` (default: every task). On a zoo of a task
        it does not apply to, the runner does not call `compute`: the row has none of its
        per-sample values and null for each of its summary names."""
        return True

    def compute(self, ctx: "EvalContext") -> MetricValues:
        raise NotImplementedError


class BehaviourCache:
    """Behaviour of the zoo's train and heldout models, shared by every evaluation of one zoo."""

    def __init__(self, zoo, device: torch.device = CPU):
        self.zoo, self.device = zoo, device
        self._behaviour: dict[str, torch.Tensor] = {}
        self._runs: dict[str, torch.Tensor] = {}

    def runs(self, which: Which) -> torch.Tensor:
        """[models of the split]: the independent unit of each (its training run, or itself in
        a split of one run; see `wmplat.zoo.format.independent_units`), in the split's order."""
        if which not in self._runs:
            models = self.zoo.train_models() if which == "train" else self.zoo.heldout_models()
            self._runs[which] = torch.tensor(independent_units(models))
        return self._runs[which]

    def get(self, which: Which) -> torch.Tensor:
        if which not in self._behaviour:
            weights = self.zoo.train_weights() if which == "train" else self.zoo.heldout_weights()
            self._behaviour[which] = behaviour_on(self.zoo.task, weights, self.device)
        return self._behaviour[which]


def behaviour_on(task, weights: torch.Tensor, device: torch.device) -> torch.Tensor:
    """`task.behaviour(weights)` with the weights on `device`, brought back to the CPU. Off the
    CPU, a task that fails (one written for CPU tensors only) is named, with the way out."""
    if device.type == "cpu":
        return task.behaviour(weights)
    try:
        return task.behaviour(weights.to(device)).cpu()
    except Exception as exc:
        raise PluginError(
            f"task {task.name!r} failed in behaviour() with weights on {device} "
            f"({type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}); "
            "a task that computes on the CPU only needs --device cpu") from exc


@dataclass
class EvalContext:
    samples: torch.Tensor                 # [n, num_params] float32
    zoo: object                           # wmplat.Zoo, both splits
    cache: BehaviourCache
    # For the `fresh` reference, the run of each sample, so that no run is compared with itself.
    sample_runs: torch.Tensor | None = None
    _sample_behaviour: torch.Tensor | None = None

    @property
    def task(self):
        return self.zoo.task

    @property
    def device(self) -> torch.device:
        """Where the evaluation computes (`--device`): a metric may move its inputs here for
        heavy work (products, distances); what it returns must be on the CPU."""
        return self.cache.device

    def weights(self, which: Which) -> torch.Tensor:
        if which == "samples":
            return self.samples
        return self.zoo.train_weights() if which == "train" else self.zoo.heldout_weights()

    def same_run(self, which: Which, start: int, stop: int) -> torch.Tensor:
        """Bool mask [samples start:stop, models of `which`]: pairs from the same training run,
        which a reference row must not compare. All False for a method's samples."""
        if self.sample_runs is None or which == "samples":
            return torch.zeros(1, 1, dtype=torch.bool)
        return self.sample_runs[start:stop, None] == self.cache.runs(which)[None, :]

    def behaviour(self, which: Which) -> torch.Tensor:
        if which != "samples":
            return self.cache.get(which)
        if self._sample_behaviour is None:
            self._sample_behaviour = behaviour_on(self.task, self.samples, self.device)
        return self._sample_behaviour
