"""wmplat-pdiff: the p-diff method (`pdiff`) and its zoo (`digits-pdiff`) as a wmplat plugin."""

import wmplat

from .method import Pdiff
from .task import DigitsPdiff

__all__ = ["DigitsPdiff", "Pdiff"]


@wmplat.hookimpl
def register_methods(register):
    register(Pdiff)


@wmplat.hookimpl
def register_datasets(register):
    register(DigitsPdiff)
