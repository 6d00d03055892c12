"""`noise`: a random training checkpoint plus Gaussian noise of scale `sigma` on every weight."""

import torch
from pydantic import BaseModel, ConfigDict, Field

from ..hookspecs import hookimpl
from ..method import Baseline, random_generator


class NoiseConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sigma: float = Field(0.01, ge=0, description="standard deviation of the added noise")


class Noise(Baseline):
    name = "noise"
    Config = NoiseConfig

    def sample(self, n, seed):
        g = random_generator(seed)
        pick = torch.randint(len(self.train_weights), (n,), generator=g)
        noise = torch.randn(n, self.train_weights.shape[1], generator=g)
        return self.train_weights[pick] + self.config.sigma * noise


@hookimpl
def register_baselines(register):
    register(Noise)
