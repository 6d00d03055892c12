"""The entry point: registers the method `hyperdiffusion`, the `shapes2d-field` task and the
shape metrics."""

import wmplat

from .method import HyperDiffusion
from .metrics import ChamferToTest, ChamferToTrain, Coverage, MinimumMatching, NearestNeighbour
from .task import Shapes2dField


@wmplat.hookimpl
def register_methods(register):
    register(HyperDiffusion)


@wmplat.hookimpl
def register_datasets(register):
    register(Shapes2dField)


@wmplat.hookimpl
def register_metrics(register):
    for metric in (ChamferToTrain, ChamferToTest, MinimumMatching, Coverage, NearestNeighbour):
        register(metric)
