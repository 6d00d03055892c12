"""A plugin whose classes are named like paths: a method that would write its results outside
the results folder, and a task whose locally built zoo would replace $WMPLAT_HOME. One method
has a valid name."""

import torch

import wmplat


class Escape(wmplat.Method):
    name = "../escape"

    def sample(self, n, seed):
        return torch.zeros(n, 1)


class WellNamed(wmplat.Method):
    name = "well-named"

    def sample(self, n, seed):
        return torch.zeros(n, 1)


class Parent(wmplat.Task):
    name = ".."

    def build_zoo(self):
        raise AssertionError("never built: the name is refused at registration")


class Spaced(wmplat.Metric):
    name = "a b"


@wmplat.hookimpl
def register_methods(register):
    register(Escape)
    register(WellNamed)


@wmplat.hookimpl
def register_datasets(register):
    register(Parent)


@wmplat.hookimpl
def register_metrics(register):
    register(Spaced)
