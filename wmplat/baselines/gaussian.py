"""`gaussian`: each parameter drawn from a Gaussian fitted to it over the training checkpoints."""

import torch

from ..hookspecs import hookimpl
from ..method import Baseline, random_generator


class Gaussian(Baseline):
    name = "gaussian"

    def fit(self, zoo, seed):
        weights = zoo.train_weights()
        self.mean, self.std = weights.mean(dim=0), weights.std(dim=0)

    def sample(self, n, seed):
        noise = torch.randn(n, len(self.mean), generator=random_generator(seed))
        return self.mean + self.std * noise


@hookimpl
def register_baselines(register):
    register(Gaussian)
