"""The entry point: registers the `shapes2d-field` task and the shape metrics.
The method `hyperdiffusion` comes in a later version."""

import wmplat

from .metrics import ChamferToTest, ChamferToTrain, Coverage, MinimumMatching, NearestNeighbour
from .task import Shapes2dField


@wmplat.hookimpl
def register_datasets(register):
    register(Shapes2dField)


@wmplat.hookimpl
def register_metrics(register):
    for metric in (ChamferToTrain, ChamferToTest, MinimumMatching, Coverage, NearestNeighbour):
        register(metric)
