"""`wmplat.train_stacked`'s optimizers and schedule, against torch.optim on a single torch.nn
model, and the independence of runs trained together."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import wmplat

SIZES = (6, 5, 3)
SGD = {"optimizer": "sgd", "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4,
       "lr_schedule": "cosine"}


def data(n: int = 50) -> tuple[torch.Tensor, torch.Tensor]:
    g = wmplat.random_generator(3)
    return torch.randn(n, SIZES[0], generator=g), torch.randint(SIZES[-1], (n,), generator=g)


def torch_nn_run(seed: int, x: torch.Tensor, y: torch.Tensor, epochs: int, batch_size: int,
                 lr: float) -> list[torch.Tensor]:
    """G.pt's loop, written with torch.nn and torch.optim: SGD with Nesterov momentum, weight
    decay, cosine annealing stepped once per epoch, the last partial batch dropped. Returns the
    flat weights after every step."""
    start = wmplat.init_mlp(SIZES, [seed])
    net = nn.Sequential(nn.Linear(SIZES[0], SIZES[1]), nn.ReLU(), nn.Linear(SIZES[1], SIZES[2]))
    with torch.no_grad():
        for layer, i in ((net[0], 1), (net[2], 2)):
            layer.weight.copy_(start[f"fc{i}.weight"][0])
            layer.bias.copy_(start[f"fc{i}.bias"][0])
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, nesterov=True,
                          weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    order_seed = torch.Generator().manual_seed(seed + 7919)
    after = []
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=order_seed)
        for b in range(len(x) // batch_size):
            idx = order[b * batch_size:(b + 1) * batch_size]
            opt.zero_grad()
            F.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()
            after.append(torch.cat([p.detach().flatten() for p in net.parameters()]))
        scheduler.step()
    return after


def test_sgd_with_nesterov_and_a_cosine_schedule_is_torch_optim_sgd_on_one_model():
    x, y = data()
    epochs, batch_size, lr = 3, 16, 0.1
    steps = epochs * wmplat.epoch_steps(len(x), batch_size, drop_last=True)
    assert steps == 9
    kept, kept_steps = wmplat.train_stacked(
        wmplat.mlp_forward, wmplat.init_mlp(SIZES, [4, 5]), x, y, [4, 5], steps=steps,
        batch_size=batch_size, lr=lr, keep=range(1, steps + 1), drop_last=True, **SGD)
    assert kept_steps == list(range(1, 10))
    for row, seed in enumerate([4, 5]):
        expected = torch.stack(torch_nn_run(seed, x, y, epochs, batch_size, lr))
        torch.testing.assert_close(kept[row], expected, rtol=1e-5, atol=1e-6)
    # the schedule matters: without it the weights differ after the first epoch
    constant, _ = wmplat.train_stacked(
        wmplat.mlp_forward, wmplat.init_mlp(SIZES, [4, 5]), x, y, [4, 5], steps=steps,
        batch_size=batch_size, lr=lr, keep=[steps], drop_last=True,
        **{**SGD, "lr_schedule": "constant"})
    assert not torch.allclose(constant[:, 0], kept[:, -1])


@pytest.mark.parametrize("options", [{}, SGD], ids=["adam", "sgd"])
def test_a_run_trained_beside_others_ends_as_it_would_alone(options):
    x, y = data()
    seeds = [0, 1, 2, 3]
    together, _ = wmplat.train_stacked(wmplat.mlp_forward, wmplat.init_mlp(SIZES, seeds), x, y,
                                       seeds, steps=12, batch_size=16, lr=0.05, keep=[6, 12],
                                       **options)
    alone, _ = wmplat.train_stacked(wmplat.mlp_forward, wmplat.init_mlp(SIZES, [2]), x, y, [2],
                                    steps=12, batch_size=16, lr=0.05, keep=[6, 12], **options)
    torch.testing.assert_close(together[2], alone[0], rtol=1e-5, atol=1e-6)


def test_steps_kept_per_run_and_step_zero_is_the_start():
    x, y = data()
    start = wmplat.init_mlp(SIZES, [0, 1])
    everything, _ = wmplat.train_stacked(wmplat.mlp_forward, start, x, y, [0, 1], steps=8,
                                         batch_size=16, lr=0.05, keep=range(9), **SGD)
    kept, steps = wmplat.train_stacked(wmplat.mlp_forward, start, x, y, [0, 1], steps=8,
                                       batch_size=16, lr=0.05, keep=[[0, 8, 3], [5, 2, 8]],
                                       **SGD)
    assert steps == [[0, 3, 8], [2, 5, 8]]
    assert torch.equal(kept[0], everything[0, [0, 3, 8]])
    assert torch.equal(kept[1], everything[1, [2, 5, 8]])
    flat_start = torch.cat([start[n][0].flatten() for n in start])
    assert torch.equal(kept[0, 0], flat_start)


def test_drop_last_skips_each_epochs_partial_batch():
    assert wmplat.epoch_steps(50, 16) == 4 and wmplat.epoch_steps(50, 16, drop_last=True) == 3
    x, y = data()
    epochs = []
    wmplat.train_stacked(wmplat.mlp_forward, wmplat.init_mlp(SIZES, [0]), x, y, [0], steps=6,
                         batch_size=16, lr=0.05, keep=[6], drop_last=True,
                         on_epoch=epochs.append)
    assert epochs == [1, 2]


@pytest.mark.parametrize(("options", "message"), [
    ({"optimizer": "lbfgs"}, "unknown optimizer 'lbfgs': choose one of adam, sgd"),
    ({"momentum": 0.9}, "momentum and nesterov are options of optimizer 'sgd', not 'adam'"),
    ({"optimizer": "sgd", "nesterov": True}, "nesterov needs a momentum above 0, got 0.0"),
    ({"lr_schedule": "step"}, "unknown lr_schedule 'step': choose one of constant, cosine"),
    ({"keep": [[1], [1, 2]]}, r"keep's lists must all name the same number of steps, got \[1, 2\]"),
    ({"keep": [[1]]}, "keep has 1 lists of steps for 2 runs"),
    ({"keep": [9]}, r"keep must name steps from 0 to 4, got \[9\]"),
])
def test_bad_options_are_named(options, message):
    x, y = data()
    settings = {"steps": 4, "batch_size": 16, "lr": 0.05, "keep": [4], **options}
    with pytest.raises(ValueError, match=message):
        wmplat.train_stacked(wmplat.mlp_forward, wmplat.init_mlp(SIZES, [0, 1]), x, y, [0, 1],
                             **settings)
