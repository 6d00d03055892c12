"""Which training checkpoints a baseline draws from: every one, or only each run's last.

A zoo that keeps checkpoints from the initialisation on (G.pt's) holds untrained and half
trained models; Zeng et al. perturb and average the trained ones, each run's last checkpoint.
"""

from typing import Literal

import torch
from pydantic import Field

Checkpoints = Literal["all", "last"]


def checkpoints_field():
    # None (unset) is "all" and leaves the config, and the folder of earlier rows, as they were
    return Field(None, description="draw from every training checkpoint ('all', the default) "
                                   "or from each training run's last one ('last')")


def drawn_from(zoo, which: Checkpoints | None) -> tuple[torch.Tensor, list]:
    """The train weights and records a baseline draws from."""
    weights, models = zoo.train_weights(), zoo.train_models()
    if which != "last":
        return weights, models
    last: dict[int, int] = {}
    for i, m in enumerate(models):
        if m.run not in last or m.step > models[last[m.run]].step:
            last[m.run] = i
    index = sorted(last.values())
    return weights[index], [models[i] for i in index]
