"""The zoo Hyper-Representations needs: small 1-D CNNs on MNIST-1D, saved along training.

2,534 parameters (the paper's CNNs have 2,464), trained from distinct seeds; each run keeps
checkpoints from early to late training, so the zoo spans a range of accuracies and "the top
30% by accuracy" means something. Split by run into train and heldout. The whole zoo trains as
one batched computation.
"""

import os
from dataclasses import asdict, dataclass

import wmplat

from .cnn import CONVS, cnn_forward, cnn_permutation_groups, cnn_spec, train_cnns
from .data import DATA_SEED, mnist1d_split

TINY_ENV = "WMPLAT_HYPERREPS_TINY_ZOO"


@dataclass(frozen=True)
class Recipe:
    train_runs: int = 160
    heldout_runs: int = 40
    epochs: int = 10
    keep: tuple[int, ...] = (2, 4, 6, 8, 10)     # checkpoints after these epochs
    batch_size: int = 64
    lr: float = 1e-2


def recipe() -> Recipe:
    """The zoo's recipe; with WMPLAT_HYPERREPS_TINY_ZOO=1 a tiny one, for tests only."""
    if os.environ.get(TINY_ENV, "").lower() in {"1", "true", "yes"}:
        return Recipe(train_runs=12, heldout_runs=6, epochs=2, keep=(1, 2))
    return Recipe()


class Mnist1dCNN(wmplat.ClassifierTask):
    name = "mnist1d-cnn"
    description = ("1-D CNN (3 conv + linear, 2,534 parameters) on MNIST-1D; "
                   "1,000 test signals")
    architecture = ("cnn1d conv 1-8-16-20 (k5 s2, relu), global average pool, "
                    "linear 20-10 (2,534 parameters)")
    license = "CC-BY-4.0"
    # The tiny test zoo has a version of its own, so that it never passes for the real one.
    version = "1-tiny" if recipe() != Recipe() else "1"
    # Models per forward in `behaviour`: convolutions need more scratch than dense layers.
    behaviour_chunk = 64
    baseline_settings = {
        # The sigmas Zeng et al. use for the Hyper-Representations zoo, taken literally: they
        # add noise to raw weights, and so does wmplat's noise baseline.
        "noise": [{"sigma": 0.02}, {"sigma": 0.04}],
        "average": [{"k": 16}],
    }

    @property
    def param_spec(self):
        return cnn_spec()

    @property
    def permutation_groups(self):
        return cnn_permutation_groups()

    def test_data(self):
        _, _, x_test, y_test = mnist1d_split()
        return x_test, y_test

    def forward(self, params, x):
        return cnn_forward(params, x)

    def build_zoo(self) -> wmplat.BuiltZoo:
        r = recipe()
        runs = list(range(r.train_runs + r.heldout_runs))
        x, y, _, _ = mnist1d_split()
        ckpts, steps = train_cnns(x, y, seeds=runs, epochs=r.epochs, batch_size=r.batch_size,
                                  lr=r.lr, keep=r.keep, on_epoch=_progress(len(runs), r.epochs))
        weights = ckpts.reshape(-1, ckpts.shape[-1])
        accuracy = self.quality(self.behaviour(weights))
        models = [
            {"id": f"run{run:03d}-step{step}", "run": run, "step": step, "seed": run,
             "split": "train" if run < r.train_runs else "heldout",
             "quality": round(float(accuracy[i * len(steps) + j]), 6)}
            for i, run in enumerate(runs) for j, step in enumerate(steps)
        ]
        provenance = {"recipe": {
            **asdict(r), "optimizer": "adam", "convs": [asdict(c) for c in CONVS],
            "checkpoints": f"after epochs {list(r.keep)}",
            "data": f"mnist1d.data.make_dataset, seed {DATA_SEED}: 4,000 train / 1,000 test",
            "seeds": "run r uses seed r; data order seed r + 7919"}}
        return wmplat.BuiltZoo(weights=weights, models=models, provenance=provenance)


def _progress(runs: int, epochs: int):
    def report(epoch: int) -> None:
        wmplat.status(f"mnist1d-cnn: trained {runs} runs for {epoch}/{epochs} epochs")
    return report
