"""The parts, in process: Chamfer distances against a direct computation, contours of a known
shape, empty shapes, the encoding, the batched fit, the set-level metrics' definitions, and
wmplat's contracts for the task and the metrics."""

import io
import math

import matplotlib.image
import pytest
import torch
from wmplat_hyperdiffusion import figures
from wmplat_hyperdiffusion.chamfer import EMPTY_CD, chamfer_matrix, chamfer_within
from wmplat_hyperdiffusion.field import SIZES, encode, fit_fields
from wmplat_hyperdiffusion.metrics import (
    ChamferToTest,
    ChamferToTrain,
    Coverage,
    MinimumMatching,
    NearestNeighbour,
    coverage,
    minimum_matching_distance,
    one_nn_accuracy,
)
from wmplat_hyperdiffusion.pointsets import (
    GRID,
    LEVEL,
    POINTS,
    PointSets,
    field_shapes,
    grid_points,
    outline_shapes,
)
from wmplat_hyperdiffusion.shapes import blob, training_points
from wmplat_hyperdiffusion.task import Shapes2dField

import wmplat
from wmplat.testing import SpecTask, check_dataset, check_metric, metric_context, tiny_zoo

METRICS = (ChamferToTrain, ChamferToTest, MinimumMatching, Coverage, NearestNeighbour)


def direct_chamfer(x: torch.Tensor, y: torch.Tensor) -> float:
    d = (x.double()[:, None] - y.double()[None]).pow(2).sum(-1)
    return float(d.min(dim=1).values.mean() + d.min(dim=0).values.mean())


def random_sets(n: int, empty: list[int], seed: int) -> PointSets:
    g = torch.Generator().manual_seed(seed)
    points = torch.randn(n, 37, 2, generator=g)
    mask = torch.zeros(n, dtype=torch.bool)
    mask[empty] = True
    points[mask] = 0
    return PointSets(points, mask)


def test_chamfer_distances_match_a_direct_computation():
    a, b = random_sets(5, [2], seed=0), random_sets(4, [1], seed=1)
    b.points[3] = a.points[0]                       # one identical pair
    cd = chamfer_matrix(a, b)
    for i in range(5):
        for j in range(4):
            if a.empty[i] and b.empty[j]:
                expected = 0.0
            elif a.empty[i] or b.empty[j]:
                expected = EMPTY_CD
            else:
                expected = direct_chamfer(a.points[i], b.points[j])
            assert cd[i, j].item() == pytest.approx(expected, rel=1e-5, abs=1e-6), (i, j)
    assert cd[0, 3] == 0.0                          # exactly, not up to rounding


def test_distances_within_one_set_are_the_full_matrix_computed_once_per_pair(monkeypatch):
    a = random_sets(6, [4], seed=2)
    within = chamfer_within(a)
    assert torch.equal(within, within.T) and (within.diagonal() == 0).all()
    # the same up to float32 rounding (the order of the two sets differs below the diagonal)
    assert torch.allclose(within, chamfer_matrix(a, a), rtol=1e-5, atol=1e-7)
    monkeypatch.setenv("WMPLAT_MEMORY_BUDGET_MB", "0.01")     # blocks of one pair
    assert torch.allclose(chamfer_within(a), within, rtol=1e-5, atol=1e-7)


def circle_logits(radius: float) -> torch.Tensor:
    """Logits on the grid whose contour at LEVEL is the circle of `radius` about the centre."""
    distance = grid_points().norm(dim=1).view(1, GRID, GRID)
    return LEVEL + 20 * (radius - distance)


def test_the_contour_of_a_circle_lies_on_the_circle():
    shapes = field_shapes(circle_logits(0.3))
    assert not shapes.empty.any() and shapes.points.shape == (1, POINTS, 2)
    points = shapes.points[0].double()
    # centred, and scaled to unit std: a circle's points lie at sqrt(2) from the centre
    assert points.mean(dim=0).abs().max() < 1e-6
    assert points.norm(dim=1).sub(math.sqrt(2)).abs().max() < 0.01
    angle = torch.arange(4096, dtype=torch.float64) * (2 * math.pi / 4096)
    exact = outline_shapes([0.3 * torch.stack([angle.cos(), angle.sin()], dim=1)])
    assert chamfer_matrix(shapes, exact).item() < 1e-4
    # another radius is the same shape once scaled, a square is not
    assert chamfer_matrix(field_shapes(circle_logits(0.2)), exact).item() < 1e-4
    square = LEVEL + 20 * (0.3 - grid_points().abs().amax(dim=1).view(1, GRID, GRID))
    assert chamfer_matrix(field_shapes(square), exact).item() > 1e-2


def test_a_field_with_no_contour_has_an_empty_shape_scored_lowest():
    task = Shapes2dField()
    logits = torch.cat([circle_logits(0.3), torch.full((1, GRID, GRID), LEVEL - 5.0),
                        torch.full((1, GRID, GRID), math.nan)])
    shapes = task.shapes(logits)
    assert shapes.empty.tolist() == [False, True, True]
    quality = task.quality(logits)
    assert quality[1] == quality[2] == -EMPTY_CD and quality[0] > -1
    sim = task.similarity(logits, logits)
    assert torch.equal(sim.diagonal(), torch.ones(3))
    assert sim[0, 1] == sim[1, 0] == 0.0 and sim[1, 2] == 1.0
    # a field inside everywhere draws the box itself
    assert not task.shapes(torch.full((1, GRID, GRID), LEVEL + 5.0)).empty.any()


def test_the_encoding_is_the_input_then_sin_and_cos_of_doubling_frequencies():
    x = torch.tensor([[0.25, -0.5]])
    encoded = encode(x)
    assert encoded.shape == (1, SIZES[0]) == (1, 18)
    expected = [x]
    for f in (1, 2, 4, 8):
        expected += [torch.sin(f * x), torch.cos(f * x)]
    assert torch.equal(encoded, torch.cat(expected, dim=1))


def test_shapes_occupancy_is_exact_and_samples_straddle_the_outline():
    shape = blob(3)
    outline = shape.outline()
    assert outline.norm(dim=1).max() <= 0.45 + 1e-9
    assert shape.inside(0.99 * outline).all() and not shape.inside(1.01 * outline).any()
    g = torch.Generator().manual_seed(0)
    points, occupancy = training_points(shape, 500, 500, g)
    assert points.shape == (1000, 2) and 0.2 < float(occupancy.mean()) < 0.8
    assert points[500:].abs().max() <= 0.5


def test_fields_fitted_together_fit_their_own_shapes_as_if_fitted_alone():
    task = Shapes2dField()
    seeds = [5, 6, 7]
    data = [training_points(blob(s), 1024, 1024, torch.Generator().manual_seed(s)) for s in seeds]
    points, occupancy = torch.stack([p for p, _ in data]), torch.stack([o for _, o in data])
    start = wmplat.init_mlp(SIZES, [0] * 3)
    fit = dict(steps=300, batch_size=256, lr=1e-2, order_seed=1)
    together = fit_fields(start, points, occupancy, **fit)
    alone = fit_fields({k: v[2:] for k, v in start.items()}, points[2:], occupancy[2:], **fit)
    assert all(torch.allclose(together[k][2:], alone[k], atol=1e-5) for k in alone)
    weights = torch.cat([together[k].reshape(3, -1) for k, _ in task.param_spec], dim=1)
    cd = chamfer_matrix(task.shapes(task.behaviour(weights)),
                        outline_shapes([blob(s).outline() for s in seeds]))
    assert (cd.diagonal() < 0.01).all()
    assert (cd.diagonal() < cd.masked_fill(torch.eye(3, dtype=torch.bool), math.inf)
            .amin(dim=0)).all()


def test_set_level_metrics_follow_their_definitions():
    # 3 samples, 4 references: sample 0 nearest reference 1, samples 1 and 2 nearest reference 3
    cd = torch.tensor([[0.5, 0.1, 0.9, 0.8],
                       [0.7, 0.6, 0.4, 0.2],
                       [0.9, 0.8, 0.7, 0.3]], dtype=torch.float64)
    assert minimum_matching_distance(cd) == pytest.approx((0.5 + 0.1 + 0.4 + 0.2) / 4)
    assert coverage(cd) == 2 / 4
    samples = torch.tensor([[0, 1.0], [1.0, 0]], dtype=torch.float64)
    references = torch.tensor([[0, 2.0], [2.0, 0]], dtype=torch.float64)
    between = torch.tensor([[0.5, 3.0], [3.0, 3.0]], dtype=torch.float64)
    # sample 0 -> ref 0 (wrong), sample 1 -> sample 0 (right), ref 0 -> sample 0 (wrong),
    # ref 1 -> ref 0 (right)
    assert one_nn_accuracy(samples, between, references) == 0.5


def test_the_shape_metrics_apply_to_shapes2d_field_only():
    assert all(m.applies_to(Shapes2dField()) for m in METRICS)
    assert not any(m.applies_to(SpecTask()) for m in METRICS)


@pytest.fixture(scope="module")
def small_zoo():
    return tiny_zoo(Shapes2dField(), runs=4, heldout=3, checkpoints=1, jitter=0.001)


@pytest.mark.parametrize("metric", METRICS, ids=lambda m: m.name)
def test_the_metrics_keep_wmplats_metric_contract(metric, small_zoo):
    check_metric(metric, small_zoo)


def test_chamfer_to_train_and_test_on_a_tiny_evaluation(small_zoo):
    task = small_zoo.task
    samples = small_zoo.train_weights()[:3]
    ctx = metric_context(samples, small_zoo)
    to_train = ChamferToTrain().compute(ctx).per_sample["chamfer_to_train"]
    assert torch.equal(to_train, torch.zeros(3, dtype=torch.float64))
    to_test = ChamferToTest().compute(ctx).per_sample["chamfer_to_test"]
    expected = chamfer_matrix(task.shapes(task.behaviour(samples)), task.test_shapes())
    assert torch.equal(to_test, expected.amin(dim=1))


def test_the_task_keeps_wmplats_dataset_contract():
    check_dataset(Shapes2dField)


class Ellipses(Shapes2dField):
    """Fields drawn without fitting: an ellipse whose aspect is set by the first weight, so
    that every model of a tiny zoo draws a shape of its own."""

    def behaviour(self, weights):
        aspect = 1 + torch.sigmoid(weights[:, :1, None] * 3)              # [n, 1, 1] in (1, 2)
        xy = grid_points().view(1, GRID, GRID, 2)
        distance = ((xy[..., 0] * aspect) ** 2 + xy[..., 1] ** 2).sqrt()
        return LEVEL + 20 * (0.3 - distance)


def test_the_figures_show_each_sample_beside_its_nearest_train_shape(monkeypatch):
    zoo = tiny_zoo(Ellipses(), runs=5, heldout=3, checkpoints=1)
    drawn = {}
    for name in ("nearest_shapes", "cd_histogram"):
        real = getattr(figures, name)
        monkeypatch.setattr(figures, name, lambda *a, real=real, name=name:
                            drawn.setdefault(name, a) and real(*a))
    samples = zoo.train_weights()[[3, 0, 1]]
    samples[2, 0] += 0.002                      # a slightly other ellipse, still nearest run 1
    values = ChamferToTrain().compute(metric_context(samples, zoo))
    assert [f.name for f in values.figures] == ["nearest-train-shapes", "cd-to-train-histogram"]
    sample_shapes, nearest, cd, ids = drawn["nearest_shapes"]
    train_ids = [m.id for m in zoo.train_models()]
    assert ids == [train_ids[3], train_ids[0], train_ids[1]]
    assert torch.equal(nearest.points, zoo.task.shapes(zoo.task.behaviour(
        zoo.train_weights()[[3, 0, 1]])).points)
    assert cd[0] == cd[1] == 0 and 0 < cd[2] < 0.01
    # the histogram: these values beside the heldout fields' least CD to a train shape
    row, reference = drawn["cd_histogram"]
    assert torch.equal(row, values.per_sample["chamfer_to_train"])
    heldout = zoo.task.shapes(zoo.task.behaviour(zoo.heldout_weights()))
    train = zoo.task.shapes(zoo.task.behaviour(zoo.train_weights()))
    assert torch.allclose(reference, chamfer_matrix(heldout, train).amin(dim=1))


def test_the_figures_are_small_pngs_and_say_when_samples_draw_no_shape():
    figure = figures.cd_histogram(torch.tensor([0.01, EMPTY_CD, 0.02], dtype=torch.float64),
                                  torch.tensor([0.03, 0.05], dtype=torch.float64))
    assert "1 of 3 samples draw no shape" in figure.caption
    empty = PointSets(torch.zeros(2, POINTS, 2), torch.tensor([True, False]))
    grid = figures.nearest_shapes(empty, empty, torch.tensor([0.0, 0.0]), ["a", "b"])
    assert "first 2 samples" in grid.caption
    for f in (figure, grid):
        image = matplotlib.image.imread(io.BytesIO(f.png), format="png")
        assert image.shape[1] < 1000 and len(f.png) < 100_000
