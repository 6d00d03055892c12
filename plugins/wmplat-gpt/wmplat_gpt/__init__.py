"""wmplat-gpt: the G.pt method (`gpt`) and its zoo (`mnist-gpt`) as a wmplat plugin."""

import wmplat

from .method import GPT
from .task import MnistGPT

__all__ = ["GPT", "MnistGPT"]


@wmplat.hookimpl
def register_methods(register):
    register(GPT)


@wmplat.hookimpl
def register_datasets(register):
    register(MnistGPT)
