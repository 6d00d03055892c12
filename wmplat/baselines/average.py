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

    def fit(self, zoo, seed):
        self.weights = zoo.train_weights()

    def sample(self, n, seed):
        g = random_generator(seed)
        k = min(self.config.k, len(self.weights))
        picks = torch.stack([torch.randperm(len(self.weights), generator=g)[:k] for _ in range(n)])
        return self.weights[picks].mean(dim=1)


@hookimpl
def register_baselines(register):
    register(Average)
