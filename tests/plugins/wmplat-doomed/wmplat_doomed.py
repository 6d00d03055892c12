"""A method whose process dies at one seed: what a sweep's worker crash looks like."""

import os
import signal

import torch
from pydantic import BaseModel

import wmplat


class DoomedConfig(BaseModel):
    die_at_seed: int | None = None


class Doomed(wmplat.Method):
    name = "doomed"
    Config = DoomedConfig

    def fit(self, zoo: wmplat.Zoo, seed: int) -> None:
        if seed == self.config.die_at_seed:
            os.kill(os.getpid(), signal.SIGKILL)
        self.w = zoo.train_weights()

    def sample(self, n: int, seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return self.w[torch.randint(len(self.w), (n,), generator=g)]


@wmplat.hookimpl
def register_methods(register):
    register(Doomed)
