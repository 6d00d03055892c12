"""The method of wmplat's DESIGN.md, as a third party writes it: copies training checkpoints."""

import torch

import wmplat


class Copycat(wmplat.Method):
    name = "copycat"

    def fit(self, zoo: wmplat.Zoo, seed: int) -> None:
        self.w = zoo.train_weights()

    def sample(self, n: int, seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        i = torch.randint(len(self.w), (n,), generator=g)
        return self.w[i]


@wmplat.hookimpl
def register_methods(register):
    register(Copycat)
