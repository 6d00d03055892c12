"""What a method plugin subclasses: fit on a zoo's train split, then sample weights."""

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
from pydantic import BaseModel

from .engine.device import CPU
from .errors import ConfigError
from .figure import Figure


@dataclass
class Diagnostics:
    """What a method measures of itself after sampling, kept with its row: summary values
    (leaderboard columns, named like a metric's) and figures for the HTML report. G.pt, say,
    asks for a range of target losses and reports how closely its samples reach them."""

    summary: dict[str, float | None] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)


class Method:
    """A generator of weights.

    Subclasses set `name`, implement `fit` and `sample`, and may declare `Config`, a pydantic
    model of their options: `--set key=value` on the command line arrives validated as
    constructor keyword arguments, and the instance keeps them as `self.config`.

    `self.device` is the torch.device the evaluation computes on (`--device`), set by the
    runner after construction and before `fit`: a method may put its networks there. Samples
    may be returned on any device. The default, for a method built outside the runner: the CPU.
    """

    name: ClassVar[str]
    kind: ClassVar[Literal["method", "baseline"]] = "method"
    Config: ClassVar[type[BaseModel] | None] = None
    device: torch.device = CPU

    def __init__(self, **options: Any) -> None:
        if self.Config is not None:
            self.config = self.Config(**options)
        elif options:
            raise ConfigError(f"{self.kind} {self.name!r} takes no options, got {sorted(options)}")
        else:
            self.config = None

    def fit(self, zoo, seed: int) -> None:
        """Learn from `zoo`, which holds the train split only."""

    def sample(self, n: int, seed: int) -> torch.Tensor:
        """Return n models as a float tensor [n, zoo.num_params] in the zoo's flat order."""
        raise NotImplementedError

    def diagnostics(self, seed: int) -> Diagnostics | None:
        """Optional, called once after `sample` with the same seed: what the method measures
        of itself (e.g. how well it follows its conditioning). None, the default: nothing."""
        return None


class Baseline(Method):
    """A method that needs no learning beyond looking at the training checkpoints, which the
    default `fit` keeps as `self.train_weights` [num_train_models, num_params]."""

    kind = "baseline"

    def fit(self, zoo, seed: int) -> None:
        self.train_weights = zoo.train_weights()


def random_generator(seed: int) -> torch.Generator:
    """A CPU generator seeded with `seed`: draw every random number of a plugin from one, never
    from torch's global state."""
    return torch.Generator().manual_seed(int(seed))
