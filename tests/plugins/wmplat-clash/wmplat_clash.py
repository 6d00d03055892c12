"""A plugin that registers the name `copycat`, which wmplat-copycat already uses."""

import torch

import wmplat


class OtherCopycat(wmplat.Method):
    name = "copycat"

    def sample(self, n, seed):
        return torch.zeros(n, 1)


@wmplat.hookimpl
def register_methods(register):
    register(OtherCopycat)
