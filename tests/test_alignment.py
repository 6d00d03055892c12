"""Alignment under permutation symmetry, and the convex-hull residual, on small exact cases."""

import itertools

import pytest
import torch
from scipy.optimize import linear_sum_assignment

from wmplat.engine import alignment
from wmplat.engine.alignment import (
    Aligner,
    PermutationGroup,
    align,
    check_groups,
    invariant_signature,
    mlp_permutation_groups,
)
from wmplat.engine.neighbours import aligned_neighbours, hull_residual
from wmplat.tasks.mlp import mlp_spec
from wmplat.zoo.params import flatten, num_params, unflatten


def random_models(sizes, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, num_params(mlp_spec(sizes)), generator=g, dtype=torch.float64)


def permute_hidden(weights, sizes, perms):
    """Reorder the hidden units of MLPs [n, P]: perms[i] for hidden layer i + 1."""
    spec = mlp_spec(sizes)
    params = {k: v.clone() for k, v in unflatten(weights, spec).items()}
    for layer, perm in enumerate(perms, start=1):
        params[f"fc{layer}.weight"] = params[f"fc{layer}.weight"][:, perm]
        params[f"fc{layer}.bias"] = params[f"fc{layer}.bias"][:, perm]
        params[f"fc{layer + 1}.weight"] = params[f"fc{layer + 1}.weight"][:, :, perm]
    return flatten(params, spec)


def test_a_permuted_copy_aligns_back_exactly():
    sizes = (6, 5, 3)
    w = random_models(sizes, 1)
    copy = permute_hidden(w, sizes, [torch.tensor([3, 0, 4, 1, 2])])
    assert (copy - w).norm() > 1
    aligned = align(w[0], copy, mlp_spec(sizes), mlp_permutation_groups(sizes))
    assert torch.equal(aligned, w)


def test_a_deeper_permuted_copy_aligns_back_by_weight_matching():
    sizes = (6, 5, 4, 3)
    w = random_models(sizes, 1, seed=1)
    copy = permute_hidden(w, sizes, [torch.tensor([4, 2, 0, 1, 3]), torch.tensor([2, 3, 1, 0])])
    aligned = align(w[0], copy, mlp_spec(sizes), mlp_permutation_groups(sizes))
    assert (aligned - w).norm() < 1e-12


def test_one_hidden_layer_alignment_is_the_exact_optimum():
    sizes = (3, 4, 2)
    spec, groups = mlp_spec(sizes), mlp_permutation_groups(sizes)
    a, b = random_models(sizes, 2, seed=2)
    best = min(float((permute_hidden(b[None], sizes, [torch.tensor(p)])[0] - a).norm())
               for p in itertools.permutations(range(4)))
    aligner = Aligner(b[None], spec, groups)
    perms, sq_dist = aligner.match(a)
    assert abs(float((aligner.apply(perms)[0] - a).norm()) - best) < 1e-12
    assert abs(float(sq_dist[0].sqrt()) - best) < 1e-9


def test_the_invariant_signature_never_exceeds_the_aligned_distance():
    sizes = (5, 6, 3)
    spec, groups = mlp_spec(sizes), mlp_permutation_groups(sizes)
    w = random_models(sizes, 20, seed=3)
    sig = invariant_signature(w, spec, groups)
    for i in range(5):
        aligned = align(w[i], w, spec, groups)
        bound = (sig - sig[i]).norm(dim=1)
        assert torch.all(bound <= (aligned - w[i]).norm(dim=1) + 1e-9)


def test_hull_residual_is_zero_inside_and_the_distance_for_one_point():
    g = torch.Generator().manual_seed(4)
    points = torch.randn(6, 50, generator=g, dtype=torch.float64)
    inside = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.0, 0.0], dtype=torch.float64) @ points
    assert hull_residual(inside, points) < 1e-6
    outside = points[0] + torch.randn(50, generator=g, dtype=torch.float64)
    assert hull_residual(outside, points[:1]) == float((outside - points[0]).norm())
    assert 0 < hull_residual(outside, points) <= float((outside - points[0]).norm())


def test_the_midpoint_of_two_aligned_models_sits_on_their_hull_far_from_both():
    sizes = (6, 5, 3)
    spec, groups = mlp_spec(sizes), mlp_permutation_groups(sizes)
    a, b = random_models(sizes, 2, seed=5)
    b_shuffled = permute_hidden(b[None], sizes, [torch.tensor([1, 0, 3, 4, 2])])
    mid = (a + b) / 2
    found = aligned_neighbours(mid[None], torch.stack([a, b_shuffled[0]]), spec, groups)
    assert found.hull_residual[0] < 1e-6
    assert abs(float(found.aligned_l2[0]) - float((a - b).norm()) / 2) < 1e-9


def clustered_models(sizes, seed=6):
    """Eight random models, each with five noisy copies whose hidden units are shuffled: [48, P]
    (near copies are what the bound must separate, far ones what it must rule out)."""
    g = torch.Generator().manual_seed(seed)
    base = random_models(sizes, 8, seed=seed)
    copies = base.repeat_interleave(5, dim=0)
    copies = copies + 0.05 * torch.randn(copies.shape, generator=g, dtype=torch.float64)
    perms = [torch.randperm(sizes[1], generator=g) for _ in range(len(copies))]
    return torch.cat([permute_hidden(c[None], sizes, [p])
                      for c, p in zip(copies, perms, strict=True)])


def test_nearest_finds_what_aligning_every_target_and_ranking_finds():
    sizes = (7, 12, 4)
    spec, groups = mlp_spec(sizes), mlp_permutation_groups(sizes)
    train = clustered_models(sizes)
    sources = torch.cat([train[::7] + 0.01, random_models(sizes, 3, seed=7), train[:2]])
    aligner = Aligner(train, spec, groups)
    solved = []
    for i, source in enumerate(sources):
        exclude = torch.arange(len(train)) % 5 == i % 5
        perms, sq_dist = aligner.match(source)
        ranked = sq_dist.masked_fill(exclude, float("inf")).topk(10, largest=False).indices
        found = aligner.nearest(source, 10, exclude)
        assert torch.equal(found.index, ranked)
        assert torch.equal(found.sq_dist, sq_dist[ranked])
        assert torch.equal(found.perms["hidden1"], perms["hidden1"][ranked])
        assert torch.equal(aligner.take(found.index, found.perms), aligner.apply(perms, ranked))
        solved.append(found.solved)
    assert min(solved) >= 10 and sum(solved) < len(sources) * len(train)


def test_nearest_returns_fewer_when_fewer_are_allowed():
    sizes = (3, 4, 2)
    spec, groups = mlp_spec(sizes), mlp_permutation_groups(sizes)
    train = random_models(sizes, 6, seed=8)
    aligner = Aligner(train, spec, groups)
    allowed_two = torch.tensor([True, False, True, True, False, True])
    assert len(aligner.nearest(train[0], 64, allowed_two).index) == 2
    assert len(aligner.nearest(train[0], 64, torch.ones(6, dtype=torch.bool)).index) == 0
    assert torch.equal(aligner.nearest(train[1], 64).index[:1], torch.tensor([1]))


def test_the_lower_bound_never_exceeds_the_ranked_distance_even_for_near_copies():
    sizes = (64, 32, 10)
    spec, groups = mlp_spec(sizes), mlp_permutation_groups(sizes)
    for scale in (1e-3, 1.0, 1e3):
        train = scale * clustered_models(sizes, seed=9)
        aligner = Aligner(train, spec, groups)
        for source in (train[3], train[3] + 1e-9 * scale, scale * random_models(sizes, 1)[0]):
            _, sq_dist = aligner.match(source)
            bound = aligner._lower_bound(aligner._costs(source))
            assert torch.all(bound <= sq_dist)
            assert torch.all(bound[sq_dist > 0.1 * scale ** 2] > 0)


def test_aligned_neighbours_reports_the_nearest_and_excludes_a_samples_own_run():
    sizes = (6, 5, 3)
    spec, groups = mlp_spec(sizes), mlp_permutation_groups(sizes)
    train = clustered_models(sizes, seed=10)
    samples = train[[0, 12]] + 1e-3
    runs = torch.arange(len(train)) // 5
    found = aligned_neighbours(samples, train, spec, groups, k=4,
                               exclude=lambda i: (runs == runs[[0, 12][i]])[None, :])
    assert all(len(n) == 4 and not torch.isin(n, torch.tensor([0, 12])).any()
               for n in found.nearest)
    assert torch.all(found.aligned_l2 > 0.1)
    kept = aligned_neighbours(samples, train, spec, groups, k=4,
                              exclude=lambda i: torch.zeros(1, 1, dtype=torch.bool))
    assert [int(n[0]) for n in kept.nearest] == [0, 12]
    assert torch.all(kept.aligned_l2 < 0.01)


def test_nearest_with_several_groups_ranks_every_weight_matching():
    sizes = (6, 5, 4, 3)
    spec, groups = mlp_spec(sizes), mlp_permutation_groups(sizes)
    train = random_models(sizes, 12, seed=11)
    aligner = Aligner(train, spec, groups)
    perms, sq_dist = aligner.match(train[4] + 0.1)
    found = aligner.nearest(train[4] + 0.1, 5)
    assert torch.equal(found.index, sq_dist.topk(5, largest=False).indices)
    assert int(found.index[0]) == 4 and found.solved == len(train)
    assert torch.equal(aligner.take(found.index, found.perms), aligner.apply(perms, found.index))


def test_without_symmetry_neighbours_are_plain_distances():
    torch.manual_seed(3)
    spec = mlp_spec((6, 5, 3))
    train = torch.randn(30, num_params(spec), dtype=torch.float64)
    samples = torch.cat([train[:2] + 1e-9, torch.randn(3, num_params(spec),
                                                       dtype=torch.float64)])
    found = aligned_neighbours(samples, train, spec, [], k=4)
    plain = (samples[:, None] - train[None]).norm(dim=2)    # direct differences: exact
    assert torch.allclose(found.aligned_l2, plain.min(dim=1).values, rtol=1e-9, atol=1e-12)
    for i, nearest in enumerate(found.nearest):
        assert torch.equal(nearest, plain[i].topk(4, largest=False).indices)


# --- several groups: weight matching, checked against the plain procedure ----------------------

CONV_SPEC = [("conv1.weight", (4, 2, 3)), ("conv1.bias", (4,)), ("conv2.weight", (5, 4, 3)),
             ("conv2.bias", (5,)), ("fc.weight", (3, 5)), ("fc.bias", (3,))]
CONV_GROUPS = [
    PermutationGroup("conv1", 4, (("conv1.weight", 0), ("conv1.bias", 0), ("conv2.weight", 1))),
    PermutationGroup("conv2", 5, (("conv2.weight", 0), ("conv2.bias", 0), ("fc.weight", 1)))]


def permuted_model(params: dict, perms: dict, groups) -> dict:
    """One model's parameters {name: tensor}, unit i of each group taken from unit perms[g][i]."""
    out = dict(params)
    for group in groups:
        if group.name in perms:
            for name, axis in group.axes:
                out[name] = out[name].index_select(axis, perms[group.name])
    return out


def plain_weight_matching(source, targets, spec, groups, sweeps):
    """The procedure as first written: in each sweep, every group's assignment solved for every
    target, with the other groups' current permutations applied; stop when a whole sweep changes
    nothing. Returns the permutations and the direct squared distances."""
    src = {k: v[0] for k, v in unflatten(source[None], spec).items()}
    models = [{k: v[0] for k, v in unflatten(t[None], spec).items()} for t in targets]
    perms = [{g.name: torch.arange(g.size) for g in groups} for _ in models]
    for _ in range(sweeps):
        changed = False
        for group in groups:
            for model, perm in zip(models, perms, strict=True):
                others = {name: p for name, p in perm.items() if name != group.name}
                tgt = permuted_model(model, others, groups)
                cost = sum(src[name].movedim(axis, 0).reshape(group.size, -1)
                           @ tgt[name].movedim(axis, 0).reshape(group.size, -1).T
                           for name, axis in group.axes)
                new = torch.from_numpy(linear_sum_assignment(cost.numpy(), maximize=True)[1])
                changed |= not torch.equal(new, perm[group.name])
                perm[group.name] = new
        if not changed:
            break
    aligned = torch.stack([flatten({k: v[None] for k, v in permuted_model(m, p, groups).items()},
                                   spec)[0] for m, p in zip(models, perms, strict=True)])
    return ({g.name: torch.stack([p[g.name] for p in perms]) for g in groups},
            ((aligned - source) ** 2).sum(dim=1))


def noisy_permuted_copies(spec, groups, count, seed):
    """`count` noisy copies of 3 random models, units shuffled in every group: [count, P]."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(3, num_params(spec), generator=g, dtype=torch.float64)
    out = []
    for i in range(count):
        noisy = base[i % 3] + 0.3 * torch.randn(num_params(spec), generator=g, dtype=torch.float64)
        params = {k: v[0] for k, v in unflatten(noisy[None], spec).items()}
        perms = {grp.name: torch.randperm(grp.size, generator=g) for grp in groups}
        out.append(flatten({k: v[None] for k, v in permuted_model(params, perms, groups).items()},
                           spec)[0])
    return base, torch.stack(out)


@pytest.mark.parametrize("sweeps", [1, 2, alignment.MAX_SWEEPS])
@pytest.mark.parametrize("net", ["mlp", "conv"])
def test_weight_matching_gives_what_re_solving_every_target_every_sweep_gives(
        monkeypatch, sweeps, net):
    sizes = (5, 6, 7, 6, 3)
    spec, groups = (mlp_spec(sizes), mlp_permutation_groups(sizes)) if net == "mlp" \
        else (CONV_SPEC, CONV_GROUPS)
    base, targets = noisy_permuted_copies(spec, groups, 30, seed=12)
    monkeypatch.setattr(alignment, "MAX_SWEEPS", sweeps)
    aligner = Aligner(targets, spec, groups)
    for source in (base[0], base[2] + 0.5 * targets[4], targets[7]):
        perms, sq_dist = aligner.match(source)
        want_perms, want_sq = plain_weight_matching(source, targets, spec, groups, sweeps)
        for group in groups:
            assert torch.equal(perms[group.name], want_perms[group.name])
        assert torch.allclose(sq_dist, want_sq, rtol=1e-12, atol=0)
        assert torch.equal(sq_dist, ((aligner.apply(perms) - source) ** 2).sum(dim=1))


def test_a_conv_net_permuted_in_every_group_aligns_back_exactly():
    base = torch.randn(4, num_params(CONV_SPEC), dtype=torch.float64,
                       generator=torch.Generator().manual_seed(13))
    params = {k: v[0] for k, v in unflatten(base[:1], CONV_SPEC).items()}
    perms = {"conv1": torch.tensor([2, 0, 3, 1]), "conv2": torch.tensor([4, 1, 0, 3, 2])}
    copy = flatten({k: v[None] for k, v in permuted_model(params, perms, CONV_GROUPS).items()},
                   CONV_SPEC)
    assert (copy - base[0]).norm() > 1
    aligner = Aligner(torch.cat([copy, base[1:]]), CONV_SPEC, CONV_GROUPS)
    found, sq_dist = aligner.match(base[0])
    assert torch.equal(aligner.apply(found)[0], base[0]) and float(sq_dist[0]) == 0
    assert torch.all(sq_dist[1:] > 1)


# --- blocked axes: a Linear layer's input columns after a Flatten --------------------------------

BLOCK_SPEC = [("conv.weight", (3, 2, 5)), ("conv.bias", (3,)), ("fc.weight", (4, 12)),
              ("fc.bias", (4,))]
BLOCK_GROUPS = [PermutationGroup("conv", 3, (("conv.weight", 0), ("conv.bias", 0),
                                             ("fc.weight", 1, 4)))]


def permute_blocks(weights, perm):
    """Reorder the 3 channels, and the fc columns in blocks of 4 with them, by hand."""
    p = {k: v.clone() for k, v in unflatten(weights, BLOCK_SPEC).items()}
    p["conv.weight"], p["conv.bias"] = p["conv.weight"][:, perm], p["conv.bias"][:, perm]
    n = len(weights)
    p["fc.weight"] = p["fc.weight"].reshape(n, 4, 3, 4)[:, :, perm].reshape(n, 4, 12)
    return flatten(p, BLOCK_SPEC)


def test_a_blocked_group_is_found_by_nearest_and_bounded_by_the_signature():
    g = torch.Generator().manual_seed(14)
    base = torch.randn(6, num_params(BLOCK_SPEC), generator=g, dtype=torch.float64)
    perm = torch.tensor([2, 0, 1])
    targets = torch.cat([permute_blocks(base[:1] + 0.01, perm), base[1:]])
    found = Aligner(targets, BLOCK_SPEC, BLOCK_GROUPS).nearest(base[0], k=1)
    assert int(found.index[0]) == 0 and torch.equal(found.perms["conv"][0], torch.tensor([1, 2, 0]))
    assert abs(float(found.sq_dist[0]) - 0.01 ** 2 * num_params(BLOCK_SPEC)) < 1e-9
    sig = invariant_signature(targets, BLOCK_SPEC, BLOCK_GROUPS)
    aligned = align(base[0], targets, BLOCK_SPEC, BLOCK_GROUPS)
    bound = (sig - invariant_signature(base[:1], BLOCK_SPEC, BLOCK_GROUPS)).norm(dim=1)
    assert torch.all(bound <= (aligned - base[0]).norm(dim=1) + 1e-9)


def test_a_blocked_entry_must_cut_its_axis_into_size_blocks():
    check_groups(BLOCK_GROUPS, BLOCK_SPEC)
    wrong = [PermutationGroup("conv", 3, (("conv.weight", 0), ("fc.weight", 1, 5)))]
    with pytest.raises(ValueError, match=r"\('fc.weight', 1, 5\) does not index an axis of "
                                         r"size 3 \* 5"):
        check_groups(wrong, BLOCK_SPEC)
