"""What a format reader gives for each checkpoint it finds."""

from dataclasses import dataclass, field

import torch


@dataclass
class Checkpoint:
    source: str                        # the file (and, where it matters, the entry) it came from
    run: int
    step: int
    seed: int
    params: dict[str, torch.Tensor]    # the task's parameter names (after renaming)
    recorded_quality: float | None = None   # what the source says its test accuracy was
    metadata: dict[str, float] = field(default_factory=dict)   # the manifest's record of it
    heldout: bool = False              # from --heldout-from: its run is heldout, whatever the draw
