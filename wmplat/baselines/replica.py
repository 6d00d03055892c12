"""`replica`: exact copies of random training checkpoints, the calibration case for memorization."""

import torch

from ..hookspecs import hookimpl
from ..method import Baseline, random_generator


class Replica(Baseline):
    name = "replica"

    def sample(self, n, seed):
        pick = torch.randint(len(self.train_weights), (n,), generator=random_generator(seed))
        return self.train_weights[pick]


@hookimpl
def register_baselines(register):
    register(Replica)
