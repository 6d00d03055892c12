"""Benchmark: `aligned_l2` and `hull_residual` at 1,000 samples x 1,000 training checkpoints.

wmplat finds each sample's K = 64 nearest aligned checkpoints by branch and bound
(`Aligner.nearest`): a permutation-invariant lower bound of every aligned distance (float32,
with a proven rounding margin) orders the checkpoints, and exact alignments (scipy's assignment
solver) are done in that order only until the next bound exceeds the K-th distance found. The
reference is the per-pair way: every checkpoint aligned to every sample, one assignment problem
per pair, then the K nearest. Both are timed in alternation on slices of the samples (a shared
machine's load then weighs on both alike), and checked to agree: the same K neighbours of every
sample in the same order, aligned_l2 and hull_residual within 1e-9 relative.

    python benchmarks/bench_align.py [--samples N]

The data are bench_eval.py's 1k zoo and samples. Takes a few minutes on two cores.
"""

import argparse
import sys

import numpy as np
import torch
from common import clock, describe_machine, train_digits
from scipy.optimize import linear_sum_assignment

from wmplat.neighbours import HULL_K, aligned_neighbours, hull_residual
from wmplat.params import unflatten
from wmplat.tasks.digits_mlp import DigitsMLP
from wmplat.threads import single_threaded

SLICES = 10                   # ours and the reference alternate over this many slices
RTOL, ATOL = 1e-9, 1e-12


# --- the reference: one assignment problem per (sample, checkpoint) pair --------------------

def units(params: dict, group, count: int) -> list[torch.Tensor]:
    return [params[name].movedim(axis + 1, 1).reshape(count, group.size, -1)
            for name, axis in group.axes]


def permuted(params: dict, group, cols: torch.Tensor, spec) -> torch.Tensor:
    """Checkpoints [c, P] with their hidden units reordered: unit i of the result is cols[:, i]."""
    out = []
    for name, _ in spec:
        tensor = params[name]
        for pname, axis in group.axes:
            if pname == name:
                shape = [len(tensor)] + [1] * (tensor.ndim - 1)
                shape[axis + 1] = group.size
                tensor = tensor.gather(axis + 1, cols.reshape(shape).expand_as(tensor))
        out.append(tensor.reshape(len(tensor), -1))
    return torch.cat(out, dim=1)


def reference(samples: torch.Tensor, train: torch.Tensor, spec, group, k: int) -> dict:
    """Per sample: the cost matrices of all checkpoints, one scipy problem per checkpoint, the k
    nearest by float64 norm expansion, their direct distances and hull."""
    train = train.double()
    params = unflatten(train, spec)
    train_units = units(params, group, len(train))
    moved = {name for name, _ in group.axes}
    fixed = [name for name, _ in spec if name not in moved]
    sq_norms = (train * train).sum(dim=1)
    out = {"aligned_l2": [], "hull_residual": [], "nearest": []}
    for sample in samples.double():
        src = unflatten(sample[None], spec)
        cost = sum(t @ s[0].T for t, s in zip(train_units, units(src, group, 1), strict=True))
        cost = cost.transpose(1, 2).numpy()           # [T, sample unit, checkpoint unit]
        cols = np.stack([linear_sum_assignment(c, maximize=True)[1] for c in cost])
        inner = np.take_along_axis(cost, cols[:, :, None], 2).sum(axis=(1, 2))
        inner = torch.from_numpy(inner) + sum(
            (params[name] * src[name]).reshape(len(train), -1).sum(1) for name in fixed)
        sq_dist = (float((sample * sample).sum()) + sq_norms - 2 * inner).clamp(min=0)
        near = sq_dist.topk(min(k, len(train)), largest=False).indices
        aligned = permuted({n: p[near] for n, p in params.items()}, group,
                           torch.from_numpy(cols)[near], spec)
        out["aligned_l2"].append(float((aligned - sample).norm(dim=1).min()))
        out["hull_residual"].append(hull_residual(sample, aligned))
        out["nearest"].append(near)
    out["aligned_l2"] = torch.tensor(out["aligned_l2"], dtype=torch.float64)
    out["hull_residual"] = torch.tensor(out["hull_residual"], dtype=torch.float64)
    return out


# --- the comparison --------------------------------------------------------------------------

def disagreements(ours, ref: dict) -> dict[str, int]:
    """Samples on which the two differ: neighbour lists, then the two statistics."""
    def close(a, b):
        return (a - b).abs() <= ATOL + RTOL * b.abs()

    return {"neighbours": sum(not torch.equal(a, b) for a, b in zip(ours.nearest, ref["nearest"],
                                                                     strict=True)),
            "aligned_l2": int((~close(ours.aligned_l2, ref["aligned_l2"])).sum()),
            "hull_residual": int((~close(ours.hull_residual, ref["hull_residual"])).sum())}


def compare_aligned(task, train: torch.Tensor, samples: torch.Tensor, k: int = HULL_K) -> list:
    """Times both ways in alternation; returns the lines to print, the speed-up last."""
    spec, groups = task.param_spec, task.permutation_groups
    times: dict = {}
    ours, refs = [], []
    with single_threaded():
        for part in torch.arange(len(samples)).chunk(SLICES):
            with clock(times, "ours"):
                ours.append(aligned_neighbours(samples[part], train, spec, groups, k=k))
            with clock(times, "reference"):
                refs.append(reference(samples[part], train, spec, groups[0], k))
    found = type(ours[0])(torch.cat([o.aligned_l2 for o in ours]),
                          torch.cat([o.hull_residual for o in ours]),
                          [n for o in ours for n in o.nearest], sum(o.solved for o in ours))
    ref = {key: torch.cat([r[key] for r in refs]) if key != "nearest"
           else [n for r in refs for n in r[key]] for key in refs[0]}
    pairs = len(samples) * len(train)
    speedup = times["reference"] / times["ours"]
    return [
        f"aligned_l2 + hull_residual (K = {k}), {len(samples):,} samples x {len(train):,} "
        f"training checkpoints, timed in alternation over {SLICES} slices:",
        f"reference (every pair aligned, one scipy problem each): {times['reference']:8.2f} s, "
        f"{pairs:,} assignment problems",
        f"wmplat (lower bound, then exact alignment in its order): {times['ours']:8.2f} s, "
        f"{found.solved:,} assignment problems ({found.solved / len(samples):.0f} per sample, "
        f"{100 * found.solved / pairs:.1f}% of the pairs)",
        f"samples that disagree (neighbour lists; values within {RTOL:g} relative): "
        f"{disagreements(found, ref)}",
        f"aligned speed-up: {speedup:.1f}x",
    ]


def main() -> None:
    from bench_eval import CHECKPOINTS, FRESH_RUNS, TRAIN_RUNS, make_samples

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000)
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"machine: {describe_machine()}")
    ckpts = train_digits(range(TRAIN_RUNS + FRESH_RUNS), CHECKPOINTS)
    train = ckpts[:TRAIN_RUNS].flatten(0, 1)
    fresh = ckpts[TRAIN_RUNS:].flatten(0, 1)
    samples = make_samples(train, fresh, 1000, torch.Generator().manual_seed(0))
    for line in compare_aligned(DigitsMLP(), train, samples[:args.samples]):
        print(line)


if __name__ == "__main__":
    sys.exit(main())
