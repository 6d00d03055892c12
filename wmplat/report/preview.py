"""A small extract of each result for the report's heatmap: 64 parameters of the first few
samples beside the same parameters of their 3 nearest aligned training checkpoints.

The 64 parameters are those that vary most across the training checkpoints, so the heatmap shows
parameters that training actually sets; the extract is small whatever the model's size.
"""

import torch

from ..engine.alignment import Aligner
from ..engine.threads import single_threaded

PARAMETERS, SAMPLES, NEIGHBOURS = 64, 4, 3


@single_threaded()
def heatmap_preview(samples: torch.Tensor, train: torch.Tensor, spec, groups,
                    exclude=None) -> dict[str, torch.Tensor]:
    """`exclude(i)` -> bool [T]: checkpoints sample i must not be shown beside (its own run)."""
    index = train.double().var(dim=0).topk(min(PARAMETERS, train.shape[1])).indices.sort().values
    aligner = Aligner(train, spec, groups)
    shown, neighbours, ids, distances = [], [], [], []
    for i, sample in enumerate(samples[:SAMPLES].double()):
        perms, sq_dist = aligner.match(sample)
        if exclude is not None:
            sq_dist = sq_dist.masked_fill(exclude(i), float("inf"))
        near = sq_dist.topk(min(NEIGHBOURS, len(train)), largest=False).indices
        aligned = aligner.apply(perms, near)
        shown.append(sample[index])
        neighbours.append(aligned[:, index])
        ids.append(near)
        distances.append((aligned - sample).norm(dim=1))
    return {"param_index": index, "samples": torch.stack(shown).float(),
            "neighbours": torch.stack(neighbours).float(), "neighbour_index": torch.stack(ids),
            "neighbour_distance": torch.stack(distances)}
