"""`average`: the mean of `k` training checkpoints drawn at random without replacement."""

import torch
from pydantic import BaseModel, ConfigDict, Field

from ..hookspecs import hookimpl
from ..method import Baseline, random_generator


class AverageConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    k: int = Field(16, ge=1, description="how many training checkpoints each sample averages")


class Average(Baseline):
    name = "average"
    Config = AverageConfig

    def sample(self, n, seed):
        g, count = random_generator(seed), len(self.train_weights)
        k = min(self.config.k, count)
        picks = torch.stack([torch.randperm(count, generator=g)[:k] for _ in range(n)])
        return self.train_weights[picks].mean(dim=1)


@hookimpl
def register_baselines(register):
    register(Average)
