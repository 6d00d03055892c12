"""`average`: the mean of `k` training checkpoints drawn at random, each aligned to the first
wherever the task declares permutation symmetry (averaging unaligned independent runs mostly
breaks the network, a straw man). With `same_run`, the k checkpoints come from one run."""

import torch
from pydantic import BaseModel, ConfigDict, Field

from ..engine.alignment import align
from ..engine.threads import single_threaded
from ..hookspecs import hookimpl
from ..method import Baseline, random_generator
from .checkpoints import Checkpoints, checkpoints_field, drawn_from


class AverageConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    k: int = Field(16, ge=1, description="how many training checkpoints each sample averages")
    same_run: bool = Field(False, description="draw the k checkpoints from a single run")
    checkpoints: Checkpoints | None = checkpoints_field()


class Average(Baseline):
    name = "average"
    Config = AverageConfig

    def fit(self, zoo, seed):
        self.train_weights, models = drawn_from(zoo, self.config.checkpoints)
        self.spec, self.groups = zoo.param_spec, zoo.task.permutation_groups
        runs = torch.tensor([m.run for m in models])
        self.run_members = [torch.nonzero(runs == r).flatten() for r in runs.unique()]

    @single_threaded()
    def sample(self, n, seed):
        g = random_generator(seed)
        return torch.stack([self._one(g) for _ in range(n)])

    def _one(self, g: torch.Generator) -> torch.Tensor:
        pool = torch.arange(len(self.train_weights))
        if self.config.same_run:
            pool = self.run_members[int(torch.randint(len(self.run_members), (1,), generator=g))]
        picks = pool[torch.randperm(len(pool), generator=g)[:self.config.k]]
        chosen = self.train_weights[picks]
        aligned = align(chosen[0], chosen, self.spec, self.groups)
        return aligned.mean(dim=0).float()


@hookimpl
def register_baselines(register):
    register(Average)
