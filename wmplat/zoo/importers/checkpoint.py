"""What a format reader gives for each checkpoint it finds."""

from dataclasses import dataclass

import torch


@dataclass
class Checkpoint:
    source: str                        # the file (and, where it matters, the entry) it came from
    run: int
    step: int
    seed: int
    params: dict[str, torch.Tensor]    # the task's parameter names (after renaming)
    recorded_quality: float | None = None   # what the source says its test accuracy was
    heldout: bool = False              # from --heldout-from: its run is heldout, whatever the draw
