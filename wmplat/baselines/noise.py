"""`noise`: a random training checkpoint plus Gaussian noise of scale `sigma` on every weight,
or only on the parameters named in `params` (for zoos where only a subset is trained, as in
p-diff, noise on the frozen rest would measure something else)."""

import torch
from pydantic import BaseModel, ConfigDict, Field

from ..errors import ConfigError
from ..hookspecs import hookimpl
from ..method import Baseline, random_generator
from ..zoo.params import param_mask


class NoiseConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sigma: float = Field(0.01, ge=0, description="standard deviation of the added noise")
    params: list[str] | None = Field(
        None, description="names of the parameters to perturb (default: all)")


class Noise(Baseline):
    name = "noise"
    Config = NoiseConfig

    def fit(self, zoo, seed):
        super().fit(zoo, seed)
        self.mask = None
        if self.config.params is not None:
            try:
                self.mask = param_mask(zoo.param_spec, self.config.params)
            except KeyError as exc:
                raise ConfigError(f"noise: {exc.args[0]}") from None

    def sample(self, n, seed):
        g = random_generator(seed)
        pick = torch.randint(len(self.train_weights), (n,), generator=g)
        noise = torch.randn(n, self.train_weights.shape[1], generator=g)
        if self.mask is not None:
            noise *= self.mask
        return self.train_weights[pick] + self.config.sigma * noise


@hookimpl
def register_baselines(register):
    register(Noise)
