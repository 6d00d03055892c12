"""`noise`: a random training checkpoint plus Gaussian noise of scale `sigma` on every weight,
or only on the parameters named in `params` (for zoos where only a subset is trained, as in
p-diff, noise on the frozen rest would measure something else).

`weight_scale` states `sigma` on normalised weights, weights x weight_scale, as a method that
normalises sees them: G.pt multiplies every weight by 0.538 / std, and Zeng et al. give its
noise baseline's sigma on that scale. The noise added to the raw weights is sigma / weight_scale.
"""

import torch
from pydantic import BaseModel, ConfigDict, Field

from ..errors import ConfigError
from ..hookspecs import hookimpl
from ..method import Baseline, random_generator
from ..zoo.params import param_mask
from .checkpoints import Checkpoints, checkpoints_field, drawn_from


class NoiseConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sigma: float = Field(0.01, ge=0, description="standard deviation of the added noise")
    params: list[str] | None = Field(
        None, description="names of the parameters to perturb (default: all)")
    # None (unset) is 1 and leaves the config, and the folder of earlier rows, as they were
    weight_scale: float | None = Field(
        None, gt=0, allow_inf_nan=False,
        description="sigma is on weights multiplied by this (a method's normalisation); the "
                    "raw noise is sigma / weight_scale (default 1: raw weights)")
    checkpoints: Checkpoints | None = checkpoints_field()


class Noise(Baseline):
    name = "noise"
    Config = NoiseConfig

    def fit(self, zoo, seed):
        self.train_weights, _ = drawn_from(zoo, self.config.checkpoints)
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
        sigma = self.config.sigma / (self.config.weight_scale or 1.0)
        return self.train_weights[pick] + sigma * noise


@hookimpl
def register_baselines(register):
    register(Noise)
