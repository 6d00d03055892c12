"""`replica`: exact copies of random training checkpoints, the calibration case for memorization."""

import torch

from ..hookspecs import hookimpl
from ..method import Baseline, random_generator


class Replica(Baseline):
    name = "replica"

    def fit(self, zoo, seed):
        self.weights = zoo.train_weights()

    def sample(self, n, seed):
        pick = torch.randint(len(self.weights), (n,), generator=random_generator(seed))
        return self.weights[pick]


@hookimpl
def register_baselines(register):
    register(Replica)
