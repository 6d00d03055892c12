"""A plugin that registers the name `copycat`, which wmplat-copycat already uses, and the
reserved name `fresh`."""

import torch

import wmplat


class OtherCopycat(wmplat.Method):
    name = "copycat"

    def sample(self, n, seed):
        return torch.zeros(n, 1)


class Impostor(wmplat.Method):
    """Takes the name of wmplat's reference row."""

    name = "fresh"


@wmplat.hookimpl
def register_methods(register):
    register(OtherCopycat)
    register(Impostor)
