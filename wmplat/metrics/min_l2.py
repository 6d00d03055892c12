"""`min_l2`: for each sample, the L2 distance in weight space to its nearest training checkpoint.

Exact, and nearly as cheap as one float32 matrix product. The product gives every squared
distance through the norm expansion ‖a‖² + ‖b‖² − 2a·b, together with a proven bound on its
rounding error. Only the pairs whose lower bound does not exceed the row's best upper bound can
hold the nearest checkpoint; those few are measured as direct float64 differences. (The float32
expansion alone is badly wrong for near-duplicates, which is exactly the memorization case.)
The bound holds for any order of summation, so the same holds on a GPU (`--device`).
"""

import torch

from ..engine.budget import blocks, chunk_size, step_size
from ..hookspecs import hookimpl
from ..metric import Metric, MetricValues
from ._reduce import median

# Scratch per (sample, checkpoint) pair: the estimate matrix, the candidate mask, the same-run
# mask, with room to spare.
BYTES_PER_PAIR = 16
# Scratch per parameter of a candidate pair refined in float64: both rows gathered, one widened.
BYTES_PER_REFINED_VALUE = 24


class MinL2(Metric):
    name = "min_l2"
    per_sample = ("min_l2",)
    summary = ("min_l2_median",)

    def compute(self, ctx):
        values = nearest_l2(ctx.weights("samples").to(ctx.device),
                            ctx.weights("train").to(ctx.device),
                            lambda start, stop: ctx.same_run("train", start, stop)).cpu()
        return MetricValues(per_sample={"min_l2": values},
                            summary={"min_l2_median": median(values)})


def nearest_l2(a: torch.Tensor, b: torch.Tensor, excluded=None) -> torch.Tensor:
    """[na, P] and [nb, P] -> [na] float64: min over rows of b of ‖a_i − b_j‖₂, exactly,
    computed on the inputs' device.

    `excluded(start, stop)`, if given, returns a bool mask broadcastable to [stop − start, nb] of
    pairs not to compare; a row with every pair excluded (or an empty b) gets +inf.
    """
    out = torch.full((len(a),), float("inf"), dtype=torch.float64, device=a.device)
    if len(a) == 0 or len(b) == 0:
        return out
    a_sq, b_sq = squared_norms(a), squared_norms(b)
    dtype = gram_dtype(a, b, float(a_sq.max() + b_sq.max()))
    a, b = a.to(dtype), b.to(dtype)     # exact: a widening conversion or none
    slack = rounding_slack(a.shape[1], dtype)
    for start, stop in blocks(len(a), chunk_size(len(b), BYTES_PER_PAIR)):
        mask = excluded(start, stop) if excluded else None
        pool = candidates(a[start:stop], b, a_sq[start:stop], b_sq, slack, mask)
        out[start:stop] = refine(a[start:stop], b, pool)
    return out


def gram_dtype(a: torch.Tensor, b: torch.Tensor, largest_sq: float) -> torch.dtype:
    """float32 when both inputs convert to it exactly, float32 products are full precision (not
    TF32 or bfloat16 under `torch.set_float32_matmul_precision`, or on a GPU the `fp32_precision`
    settings) and the squared norms are far from overflow; float64 otherwise."""
    narrow = all(t.dtype in (torch.float32, torch.float16, torch.bfloat16) for t in (a, b))
    full = full_float32_products(a.device)
    return torch.float32 if narrow and full and largest_sq < 2.0**100 else torch.float64


def full_float32_products(device: torch.device) -> bool:
    """Whether float32 matrix products on `device` round like float32 (IEEE), as the bound in
    `rounding_slack` assumes; False where a setting may make them TF32 or bfloat16."""
    try:
        if torch.get_float32_matmul_precision() != "highest":
            return False
    except RuntimeError:    # torch refuses to answer once its old and new settings are mixed
        return False
    if device.type == "cuda":
        return getattr(torch.backends.cuda.matmul, "fp32_precision", "ieee") in ("none", "ieee")
    return True


def squared_norms(x: torch.Tensor) -> torch.Tensor:
    """[n] float64 sums of squares, a block of rows at a time."""
    out = torch.empty(len(x), dtype=torch.float64, device=x.device)
    for start, stop in blocks(len(x), step_size(8 * x.shape[1])):
        out[start:stop] = x[start:stop].to(torch.float64, copy=True).pow_(2).sum(dim=1)
    return out


def rounding_slack(p: int, dtype: torch.dtype) -> float:
    """s such that each computed value in `candidates` is within s/2·Sᵢⱼ of its exact value,
    where Sᵢⱼ = ‖aᵢ‖² + ‖bⱼ‖², so that comparing two of them with a margin of s·S is safe.

    The matrix product adds p products and a norm term whose magnitudes sum to at most 2·S; in
    any order of summation, fused or not, its error is at most γ·2S with γ = n·u/(1 − n·u) for
    n terms (Higham, Accuracy and Stability of Numerical Algorithms, §3.1). The few roundings
    after it add some u·S more: n = p + 8 covers them, and a factor 2 leaves room.
    """
    u = torch.finfo(dtype).eps / 2
    n = p + 8
    return 4 * n * u / (1 - n * u)


def candidates(a, b, a_sq, b_sq, slack, excluded=None) -> torch.Tensor:
    """Bool [na, nb]: the pairs that may be nearest, from the Gram estimate and its bound.

    The nearest j* has d² − s·S ≤ the row's least d² + s·S, that is, in terms of the product
    alone, (1 − s)‖bⱼ‖² − 2aᵢ·bⱼ ≤ minₖ((1 + s)‖bₖ‖² − 2aᵢ·bₖ) + 2s‖aᵢ‖².
    """
    dtype = a.dtype
    upper = torch.addmm(((1 + slack) * b_sq).to(dtype).unsqueeze(0), a, b.T, alpha=-2)
    if excluded is not None and excluded.any():
        upper.masked_fill_(excluded.to(upper.device), float("inf"))
    # Products that underflow lose up to the smallest normal number each, whatever S is.
    underflow = 4 * a.shape[1] * torch.finfo(dtype).tiny
    threshold = (upper.amin(dim=1) + (2 * slack * a_sq).to(dtype) + underflow).unsqueeze(1)
    # Rows with every pair excluded have no candidate.
    threshold.masked_fill_(threshold.isinf(), float("-inf"))
    lower = upper.sub_((2 * slack * b_sq).to(dtype))
    return lower <= threshold


def refine(a: torch.Tensor, b: torch.Tensor, pool: torch.Tensor) -> torch.Tensor:
    """[na] float64: the least direct float64 distance over each row's candidate pairs."""
    best = torch.full((len(a),), float("inf"), dtype=torch.float64, device=a.device)
    rows, cols = pool.nonzero(as_tuple=True)
    for start, stop in blocks(len(rows), step_size(BYTES_PER_REFINED_VALUE * a.shape[1])):
        r, c = rows[start:stop], cols[start:stop]
        distance = a[r].to(torch.float64, copy=True).sub_(b[c]).norm(dim=1)
        best.scatter_reduce_(0, r, distance, "amin")
    return best


@hookimpl
def register_metrics(register):
    register(MinL2)
