"""The entry point: registers the `hyperreps` method and the `mnist1d-cnn` task."""

import wmplat

from .method import HyperReps
from .task import Mnist1dCNN


@wmplat.hookimpl
def register_methods(register):
    register(HyperReps)


@wmplat.hookimpl
def register_datasets(register):
    register(Mnist1dCNN)
