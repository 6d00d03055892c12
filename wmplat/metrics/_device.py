"""Where a built-in metric computes with a task's code: on the evaluation's device only where
that code is wmplat's own."""

import torch

from ..engine.device import CPU
from ..task import ClassifierTask


def device_for(ctx, *task_methods: str) -> torch.device:
    """`ctx.device` where each of the task's `task_methods` (e.g. "similarity") is
    `ClassifierTask`'s, which computes wherever its inputs lie; else the CPU. A task's own code
    gets the CPU tensors the context keeps, as it always did: it may be written for the CPU
    only, or memoise its inputs by identity."""
    task = type(ctx.task)
    own = all(getattr(task, name, None) is getattr(ClassifierTask, name) for name in task_methods)
    return ctx.device if own else CPU
