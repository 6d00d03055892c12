"""The task `shapes2d-field`: neural fields of procedural 2-D shapes, judged by their shapes.

Each model is an occupancy field (field.py) fitted to one radial blob (shapes.py). Behaviour is
the field's logits on a GRID x GRID grid of the box; the shape is its contour at logit(0.8)
(pointsets.py); quality and similarity come from Chamfer distances (chamfer.py):
- quality = − min CD to the task's test shapes (exact outlines of shapes no run is fitted to),
  higher is better, 0 for a field that draws one of them exactly;
- similarity = exp(−CD / SIMILARITY_SCALE), 1 for identical shapes, 0 to an empty one.
All fields start from the weights fitted to one anchor shape, as HyperDiffusion starts every
field from its first shape's: they share one alignment, and the task declares no symmetry.
"""

import math
import os
from dataclasses import asdict, dataclass
from functools import cache

import torch

import wmplat

from .chamfer import EMPTY_CD, chamfer_matrix, chamfer_within
from .field import FREQUENCIES, HIDDEN, SIZES, encode, fit_fields
from .memo import Memo
from .pointsets import GRID, LEVEL, POINTS, PointSets, field_shapes, grid_points, outline_shapes
from .shapes import blob, training_points

TINY_ENV = "WMPLAT_SHAPES2D_TINY_ZOO"
# CD at which similarity is 1/e: about the distance from a shape to its nearest neighbour in
# the family (median 0.05 among the 64 test shapes, 0.03 from a heldout field to the nearest of
# 96 train fields). The statistics use ranks only, so the scale changes no verdict.
SIMILARITY_SCALE = 0.05
ANCHOR_SEED = 2_000_000       # the anchor shape, and the anchor field's initialisation
TEST_SEED = 1_000_000         # test shape i has seed TEST_SEED + i
POINTS_SEED = 7919            # shape seed s draws its occupancy samples from seed s + 7919
ORDER_SEED = 104729           # the order of sample positions in every fit
# The noise baseline: the sigmas Zeng et al. use for HyperDiffusion, on raw weights (as
# HyperDiffusion diffuses them), and one on the zoo's own scale: sigma on weights divided by
# the standard deviation of all train weights (as `normalization=global` sees them).
RAW_NOISE_SIGMAS = (0.02, 0.04)
RELATIVE_NOISE_SIGMA = 0.1


@dataclass(frozen=True)
class Recipe:
    train_runs: int = 96
    heldout_runs: int = 48
    test_shapes: int = 64
    surface_points: int = 2048
    uniform_points: int = 2048
    anchor_steps: int = 1500
    steps: int = 800
    batch_size: int = 512
    lr: float = 1e-2


def recipe() -> Recipe:
    """The zoo's recipe; with WMPLAT_SHAPES2D_TINY_ZOO=1 a tiny one, for tests only."""
    if os.environ.get(TINY_ENV, "").lower() in {"1", "true", "yes"}:
        return Recipe(train_runs=10, heldout_runs=8, test_shapes=8, anchor_steps=200,
                      steps=100)
    return Recipe()


class Shapes2dField(wmplat.Task):
    name = "shapes2d-field"
    description = ("occupancy fields (positional encoding + MLP 18-32-32-32-1, 2,753 "
                   "parameters) of procedural 2-D blobs; judged by Chamfer distance")
    architecture = ("positional encoding (x, sin/cos of 2^k x, k=0..3) 2->18, mlp 18-32-32-32-1 "
                    "relu, one occupancy logit (2,753 parameters)")
    license = "MIT"
    quality_name = "-CD to test shapes"
    similarity_name = f"exp(-CD / {SIMILARITY_SCALE}) between shapes"
    # The tiny test zoo has a version of its own, so that it never passes for the real one.
    # Version 2: the baselines' settings moved into the zoo's provenance.
    version = "2-tiny" if recipe() != Recipe() else "2"
    # None here: one noise setting depends on the zoo's weights, so build_zoo writes them all
    # into the provenance's `baseline_settings`, where the runner reads them (zoo_baselines).
    baseline_settings = {}

    @property
    def param_spec(self):
        return wmplat.mlp_spec(SIZES)

    @property
    def permutation_groups(self):
        return []   # shared initialisation: units are not interchangeable between fields

    def behaviour(self, weights: torch.Tensor) -> torch.Tensor:
        """[n, num_params] -> logits [n, GRID, GRID] (row i at y_i, column j at x_j).
        One field at a time: a batched product rounds differently with the batch's size, and a
        field's logits must not depend on the fields evaluated beside it (each is a 4096 x 18
        product, fast enough)."""
        encoded = encode(grid_points())
        out = torch.empty(len(weights), GRID * GRID)
        with torch.no_grad():
            for i in range(len(weights)):
                params = unflatten(weights[i:i + 1], self.param_spec)
                out[i] = wmplat.mlp_forward(params, encoded)[0, :, 0]
        return out.view(len(weights), GRID, GRID)

    def __init__(self):
        # one row's matrices and shapes, and those of the train and heldout fields it reuses
        self._memo = Memo(size=16)

    def shapes(self, behaviour: torch.Tensor) -> PointSets:
        """The fields' shapes: POINTS points on the contour at LEVEL, normalised."""
        return self._memo.get("shapes", field_shapes, behaviour)

    def test_shapes(self) -> PointSets:
        """The reference shapes of quality, MMD, COV and 1-NNA: exact outlines."""
        return _test_shapes(recipe().test_shapes)

    def chamfer(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Behaviours [na, ...], [nb, ...] -> [na, nb] float64 CD between their shapes."""
        return self._memo.get("chamfer", lambda x, y: chamfer_matrix(self.shapes(x),
                                                                     self.shapes(y)), a, b)

    def chamfer_within(self, behaviour: torch.Tensor) -> torch.Tensor:
        """[n, n] float64 CD between the fields' shapes, each pair computed once."""
        return self._memo.get("within", lambda x: chamfer_within(self.shapes(x)), behaviour)

    def test_chamfer(self, behaviour: torch.Tensor) -> torch.Tensor:
        """[n, test shapes] float64 CD from each field's shape to each test shape."""
        return self._memo.get("test", lambda x: chamfer_matrix(self.shapes(x),
                                                               self.test_shapes()), behaviour)

    def test_chamfer_within(self) -> torch.Tensor:
        """[test shapes, test shapes] float64 CD among the test shapes."""
        return _test_chamfer_within(recipe().test_shapes)

    def chamfer_to_test(self, behaviour: torch.Tensor) -> torch.Tensor:
        """[n] float64: each field's least CD to a test shape."""
        return self.test_chamfer(behaviour).amin(dim=1)

    def quality(self, behaviour: torch.Tensor) -> torch.Tensor:
        return -self.chamfer_to_test(behaviour).float()

    def similarity(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.exp(-self.chamfer(a, b) / SIMILARITY_SCALE).float()

    def build_zoo(self) -> wmplat.BuiltZoo:
        r = recipe()
        runs = list(range(r.train_runs + r.heldout_runs))
        anchor = fit_anchor(r)
        wmplat.status(f"shapes2d-field: fitting {len(runs)} fields from the anchor's weights")
        points, occupancy = sample_shapes(runs, r)
        start = {k: v.expand(len(runs), *v.shape[1:]) for k, v in anchor.items()}
        fitted = fit_fields(start, points, occupancy, steps=r.steps, batch_size=r.batch_size,
                            lr=r.lr, order_seed=ORDER_SEED,
                            on_step=_progress(f"{len(runs)} fields", r.steps))
        weights = torch.cat([fitted[k].reshape(len(runs), -1) for k, _ in self.param_spec],
                            dim=1)
        quality = self.quality(self.behaviour(weights))
        models = [
            {"id": f"run{run:03d}", "run": run, "step": r.steps, "seed": run,
             "split": "train" if run < r.train_runs else "heldout",
             "quality": round(float(quality[i]), 6)}
            for i, run in enumerate(runs)]
        train = weights[[m["split"] == "train" for m in models]]
        provenance = {"baseline_settings": zoo_baselines(train), "recipe": {
            **asdict(r), "optimizer": "adam, lr / 10 for the last quarter of steps",
            "loss": "binary cross-entropy with logits", "hidden": list(HIDDEN),
            "encoding": f"x, sin/cos(f x) for f in {list(FREQUENCIES)}",
            "init": f"every field from the anchor field (shape seed {ANCHOR_SEED}, fitted "
                    f"{r.anchor_steps} steps from torch.nn's initialisation, seed {ANCHOR_SEED})",
            "seeds": f"run r fits shape seed r; samples from seed r + {POINTS_SEED}; "
                     f"test shape i has seed {TEST_SEED} + i",
            "shape": f"contour at logit(0.8) = {LEVEL:.4f} of a {GRID}x{GRID} grid, {POINTS} "
                     "points by arc length, centred, scaled to unit std",
            "empty_shape_cd": EMPTY_CD, "similarity": f"exp(-CD / {SIMILARITY_SCALE})"}}
        return wmplat.BuiltZoo(weights=weights, models=models, provenance=provenance)


def zoo_baselines(train: torch.Tensor) -> dict[str, list[dict[str, float]]]:
    """The baselines' settings for a zoo of these train weights [n, P]: noise at each raw sigma
    and at RELATIVE_NOISE_SIGMA on weights / their std (weight_scale = 1 / std, three
    significant digits), and the average of 16."""
    scale = float(f"{1 / float(train.double().std()):.3g}")
    return {"noise": [*({"sigma": s} for s in RAW_NOISE_SIGMAS),
                      {"sigma": RELATIVE_NOISE_SIGMA, "weight_scale": scale}],
            "average": [{"k": 16}]}


def unflatten(flat: torch.Tensor, spec) -> dict[str, torch.Tensor]:
    """Flat weights [n, P] -> {name: [n, *shape]} in the spec's order (views, no copy)."""
    out, offset = {}, 0
    for name, shape in spec:
        size = math.prod(shape)
        out[name] = flat[:, offset:offset + size].view(len(flat), *shape)
        offset += size
    return out


def sample_shapes(seeds: list[int], r: Recipe) -> tuple[torch.Tensor, torch.Tensor]:
    """Occupancy samples of each shape seed: points [n, m, 2], occupancy [n, m]."""
    pairs = [training_points(blob(s), r.surface_points, r.uniform_points,
                             torch.Generator().manual_seed(s + POINTS_SEED)) for s in seeds]
    return torch.stack([p for p, _ in pairs]), torch.stack([o for _, o in pairs])


def fit_anchor(r: Recipe) -> dict[str, torch.Tensor]:
    """The first field, fitted to the anchor shape from torch.nn's initialisation: every field
    of the zoo starts from its weights."""
    wmplat.status("shapes2d-field: fitting the anchor field")
    points, occupancy = sample_shapes([ANCHOR_SEED], r)
    return fit_fields(wmplat.init_mlp(SIZES, [ANCHOR_SEED]), points, occupancy,
                      steps=r.anchor_steps, batch_size=r.batch_size, lr=r.lr,
                      order_seed=ORDER_SEED, on_step=_progress("the anchor", r.anchor_steps))


@cache
def _test_shapes(count: int) -> PointSets:
    return outline_shapes([blob(TEST_SEED + i).outline() for i in range(count)])


@cache
def _test_chamfer_within(count: int) -> torch.Tensor:
    return chamfer_within(_test_shapes(count))


def _progress(what: str, steps: int):
    def report(step: int) -> None:
        if step % 200 == 0 or step == steps:
            wmplat.status(f"shapes2d-field: fitted {what} for {step}/{steps} steps")
    return report
