"""Benchmark: `aligned_l2` and `hull_residual` at 1,000 samples x 1,000 training checkpoints.

wmplat finds each sample's K = 64 nearest aligned checkpoints by branch and bound
(`Aligner.nearest`): a permutation-invariant lower bound of every aligned distance (float32,
with a proven rounding margin) orders the checkpoints, and exact alignments (scipy's assignment
solver) are done in that order only until the next bound exceeds the K-th distance found. The
reference is the per-pair way: every checkpoint aligned to every sample, one assignment problem
per pair, then the K nearest. Both are timed in alternation on slices of the samples (a shared
machine's load then weighs on both alike), and checked to agree: the same K neighbours of every
sample in the same order, aligned_l2 and hull_residual within 1e-9 relative.

With several permutation groups (deeper nets), every checkpoint is aligned to every sample by
weight matching: each group's assignment in turn until no permutation changes. wmplat re-solves
a group only for the checkpoints where a group sharing a parameter with it changed since, and
reads the permuted checkpoints with one index per parameter; the reference is the previous
implementation (every group re-solved for every checkpoint in every sweep, until none changes),
copied here. Both are timed in alternation and checked to give the same permutations and
bit-identical squared distances, on MLPs of sizes (64, 32, 32, 10) trained on digits and, where
the wmplat-hyperreps plugin and its zoo are installed, on its mnist1d-cnn zoo (three groups).

    python benchmarks/bench_align.py [--samples N] [--section one|several|all]
        [--several-samples N] [--zoo NAME]

The data are bench_eval.py's 1k zoo and samples. Takes a few minutes on two cores.
"""

import argparse
import sys

import numpy as np
import torch
from common import clock, describe_machine, train_digits
from scipy.optimize import linear_sum_assignment

from wmplat.engine.alignment import Aligner, mlp_permutation_groups
from wmplat.engine.neighbours import HULL_K, aligned_neighbours, hull_residual
from wmplat.engine.threads import single_threaded
from wmplat.tasks.digits_mlp import BATCH_SIZE, EPOCHS, LR, DigitsMLP, digits_split
from wmplat.tasks.mlp import mlp_spec, train_mlps
from wmplat.zoo.params import unflatten

SLICES = 10                   # ours and the reference alternate over this many slices
RTOL, ATOL = 1e-9, 1e-12
DEEP_SIZES = (64, 32, 32, 10)
MAX_SWEEPS = 50


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


# --- several groups: the previous weight matching, every group for every checkpoint ------------

def permute_param(tensor, name, perms: dict, groups) -> torch.Tensor:
    """A batched parameter [c, *shape] with every group permutation in `perms` applied."""
    for group in groups:
        if group.name not in perms:
            continue
        for pname, axis in group.axes:
            if pname == name:
                shape = [len(tensor)] + [1] * (tensor.ndim - 1)
                shape[axis + 1] = group.size
                index = perms[group.name].reshape(shape).expand_as(tensor)
                tensor = tensor.gather(axis + 1, index)
    return tensor


def matching_cost(src, tgt, perms, group, groups) -> torch.Tensor:
    others = {g.name: perms[g.name] for g in groups if g is not group}
    cost = 0
    for name, axis in group.axes:
        t = permute_param(tgt[name], name, others, groups)
        a = src[name][0].movedim(axis, 0).reshape(group.size, -1)
        b = t.movedim(axis + 1, 1).reshape(len(t), group.size, -1)
        cost = cost + (b @ a.T).transpose(1, 2)
    return cost


def solve(cost: torch.Tensor) -> torch.Tensor:
    out = np.empty(cost.shape[:2], dtype=np.int64)
    for k, matrix in enumerate(cost.numpy()):
        out[k] = linear_sum_assignment(matrix, maximize=True)[1]
    return torch.from_numpy(out)


def reference_match(sample: torch.Tensor, params: dict, spec, groups):
    """Permutations {group: [T, size]} and squared distances [T], as wmplat 0.2.0 computed them:
    sweeps over the groups, every checkpoint re-solved, until no permutation changes."""
    src = unflatten(sample.double().unsqueeze(0), spec)
    count = len(next(iter(params.values())))
    perms = {g.name: torch.arange(g.size).expand(count, -1).clone() for g in groups}
    for _ in range(MAX_SWEEPS):
        changed = False
        for group in groups:
            new = solve(matching_cost(src, params, perms, group, groups))
            changed |= not torch.equal(new, perms[group.name])
            perms[group.name] = new
        if not changed:
            break
    aligned = torch.cat([permute_param(params[name], name, perms, groups).reshape(count, -1)
                         for name, _ in spec], dim=1)
    return perms, ((aligned - sample.double()) ** 2).sum(dim=1)


def compare_weight_matching(name: str, train, samples, spec, groups, k: int = HULL_K) -> list:
    """Times `Aligner.match` against `reference_match` in alternation; returns lines to print."""
    aligner = Aligner(train, spec, groups)
    params = unflatten(train.double(), spec)
    times: dict = {}
    perm_diff = neighbour_diff = 0
    worst = 0.0
    with single_threaded():
        for part in torch.arange(len(samples)).chunk(SLICES):
            with clock(times, "ours"):
                ours = [aligner.match(samples[i]) for i in part]
            with clock(times, "reference"):
                refs = [reference_match(samples[i], params, spec, groups) for i in part]
            for (perms, sq), (ref_perms, ref_sq) in zip(ours, refs, strict=True):
                perm_diff += any(not torch.equal(perms[g], ref_perms[g]) for g in ref_perms)
                worst = max(worst, float(((sq - ref_sq).abs() / ref_sq.abs().clamp_min(1e-300))
                                         .max()))
                top = min(k, len(sq))
                neighbour_diff += not torch.equal(sq.topk(top, largest=False).indices,
                                                  ref_sq.topk(top, largest=False).indices)
    n = len(samples)
    sizes = ", ".join(str(g.size) for g in groups)
    return [
        f"weight matching, {name}: {len(groups)} groups of {sizes} units, {n:,} samples x "
        f"{len(train):,} checkpoints ({train.shape[1]:,} parameters), timed in alternation:",
        f"reference (every group re-solved for every checkpoint each sweep): "
        f"{times['reference']:8.2f} s ({times['reference'] / n:.3f} s per sample)",
        f"wmplat (only checkpoints whose neighbouring groups changed):        "
        f"{times['ours']:8.2f} s ({times['ours'] / n:.3f} s per sample)",
        f"samples whose permutations differ: {perm_diff}, whose {k} nearest differ: "
        f"{neighbour_diff}; largest relative difference of a squared distance: {worst:.1e}",
        f"weight-matching speed-up: {times['reference'] / times['ours']:.1f}x",
    ]


def deep_mlp_data(n: int):
    """MLPs DEEP_SIZES trained on digits with the digits-mlp recipe: 50 runs x 10 checkpoints to
    align to, and n samples from them and from 10 other runs (bench_eval.py's kinds)."""
    from bench_eval import make_samples

    x, y, _, _ = digits_split()
    ckpts, _ = train_mlps(x, y, DEEP_SIZES, seeds=range(60), epochs=EPOCHS,
                          batch_size=BATCH_SIZE, lr=LR, keep_last=10)
    train, fresh = ckpts[:50].flatten(0, 1), ckpts[50:].flatten(0, 1)
    samples = make_samples(train, fresh, n, torch.Generator().manual_seed(0))
    return train, samples, mlp_spec(DEEP_SIZES), mlp_permutation_groups(DEEP_SIZES)


def zoo_data(name: str, n: int):
    """A plugin zoo's training checkpoints, and n samples from them and its held-out ones; None
    where the zoo is not installed."""
    from bench_eval import make_samples

    from wmplat.plugins import load_plugins
    from wmplat.zoo.catalogue import open_zoo

    try:
        zoo = open_zoo(name, load_plugins())
        train, heldout = zoo.train_weights(), zoo.heldout_weights()
    except Exception as error:    # a missing plugin or zoo, whatever the error: skip it
        print(f"zoo {name!r} not available ({error}); skipped")
        return None
    samples = make_samples(train, heldout, n, torch.Generator().manual_seed(0))
    return train, samples, zoo.param_spec, zoo.task.permutation_groups


def several_groups(n: int, zoo: str) -> None:
    with single_threaded():
        deep = deep_mlp_data(n)
    for line in compare_weight_matching(f"digits MLPs {DEEP_SIZES}", *deep):
        print(line)
    found = zoo_data(zoo, n)
    if found is not None:
        for line in compare_weight_matching(f"zoo {zoo}", *found):
            print(line)


def main() -> None:
    from bench_eval import CHECKPOINTS, FRESH_RUNS, TRAIN_RUNS, make_samples

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--section", choices=("one", "several", "all"), default="all")
    parser.add_argument("--several-samples", type=int, default=50)
    parser.add_argument("--zoo", default="mnist1d-cnn")
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"machine: {describe_machine()}")
    if args.section in ("one", "all"):
        ckpts = train_digits(range(TRAIN_RUNS + FRESH_RUNS), CHECKPOINTS)
        train = ckpts[:TRAIN_RUNS].flatten(0, 1)
        fresh = ckpts[TRAIN_RUNS:].flatten(0, 1)
        samples = make_samples(train, fresh, 1000, torch.Generator().manual_seed(0))
        for line in compare_aligned(DigitsMLP(), train, samples[:args.samples]):
            print(line)
    if args.section in ("several", "all"):
        several_groups(args.several_samples, args.zoo)


if __name__ == "__main__":
    sys.exit(main())
