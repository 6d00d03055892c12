"""A plugin that forgot @wmplat.hookimpl: pluggy never calls its hook."""

import torch

import wmplat


class Forgotten(wmplat.Method):
    name = "forgotten"

    def sample(self, n, seed):
        return torch.zeros(n, 1)


def register_methods(register):
    register(Forgotten)
