"""The embedded default task: an MLP 64 -> 32 -> 10 (ReLU) on scikit-learn's bundled digits.

1,797 images of 8x8 pixels; a fixed stratified split keeps 500 for the test set that defines
behaviour and accuracy. The zoo: 96 runs with distinct seeds, 5 checkpoints each (the last five
epochs), runs 0-63 train and 64-95 heldout, all trained as one batched computation.
"""

import functools
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..engine.alignment import mlp_permutation_groups
from ..engine.atomic import clean_stale, write_atomic
from ..engine.progress import bar
from ..hookspecs import hookimpl
from ..task import BuiltZoo, ClassifierTask, ShippedZoo
from ..zoo.home import home
from .mlp import mlp_forward, mlp_spec, train_mlps

SIZES = (64, 32, 10)
TEST_SIZE = 500
SPLIT_SEED = 0
TRAIN_RUNS, HELDOUT_RUNS, CHECKPOINTS = 64, 32, 5
EPOCHS, BATCH_SIZE, LR = 30, 32, 3e-3
# The zoo as built by benchmarks/ship_zoo.py, installed instead of trained: training gives
# slightly different numbers on machines with other floating-point kernels.
SHIPPED = Path(__file__).parent / "zoos" / "digits-mlp"
SHIPPED_MANIFEST_SHA256 = "33831b1ac8aa8f9e5705307f9afb2fda8a17a78677eeae6f1d489149b434c1af"


@functools.cache
def digits_split() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x_train, y_train, x_test, y_test), pixels scaled to [0, 1].

    The split is cached under $WMPLAT_HOME: importing scikit-learn costs more than a whole
    evaluation of the default zoo.
    """
    cache = home() / "data" / f"digits-split-{SPLIT_SEED}-{TEST_SIZE}.safetensors"
    if not cache.is_file():
        clean_stale(cache.parent)
        tensors = _split_with_sklearn()
        write_atomic(cache, lambda tmp: save_file(tensors, tmp))
    data = load_file(cache)
    return data["x_train"], data["y_train"], data["x_test"], data["y_test"]


def _split_with_sklearn() -> dict[str, torch.Tensor]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x_tr, x_te, y_tr, y_te = train_test_split(
        data.data / 16.0, data.target, test_size=TEST_SIZE, stratify=data.target,
        random_state=SPLIT_SEED)
    return {"x_train": torch.tensor(x_tr, dtype=torch.float32),
            "y_train": torch.tensor(y_tr, dtype=torch.long),
            "x_test": torch.tensor(x_te, dtype=torch.float32),
            "y_test": torch.tensor(y_te, dtype=torch.long)}


class DigitsMLP(ClassifierTask):
    name = "digits-mlp"
    description = "MLP 64-32-10 (ReLU) on scikit-learn's digits; 500 test examples"
    architecture = "mlp 64-32-10 relu (2,410 parameters)"
    license = "CC-BY-4.0"
    version = "2"  # 2: the zoo ships with wmplat; caches trained by version 1 are replaced
    baseline_settings = {
        "noise": [{"sigma": 0.01}, {"sigma": 0.1}],
        "average": [{"k": 16}, {"k": 5, "same_run": True}],
    }

    @property
    def param_spec(self):
        return mlp_spec(SIZES)

    @property
    def permutation_groups(self):
        return mlp_permutation_groups(SIZES)

    def test_data(self):
        _, _, x_test, y_test = digits_split()
        return x_test, y_test

    def forward(self, params, x):
        return mlp_forward(params, x)

    @classmethod
    def shipped_zoo(cls) -> ShippedZoo:
        return ShippedZoo(SHIPPED, SHIPPED_MANIFEST_SHA256)

    def train_runs(self, seeds) -> tuple[torch.Tensor, list[int]]:
        """Train one run per seed with the zoo's recipe, all at once: the checkpoints
        [runs, CHECKPOINTS, num_params] and their step numbers."""
        x, y, _, _ = digits_split()
        with bar(EPOCHS, f"training {len(seeds)} digits-mlp runs") as progress:
            return train_mlps(x, y, SIZES, seeds=list(seeds), epochs=EPOCHS,
                              batch_size=BATCH_SIZE, lr=LR, keep_last=CHECKPOINTS,
                              on_epoch=lambda _: progress.update())

    def build_zoo(self) -> BuiltZoo:
        runs = list(range(TRAIN_RUNS + HELDOUT_RUNS))
        ckpts, steps = self.train_runs(runs)
        weights = ckpts.reshape(-1, ckpts.shape[-1])
        accuracy = self.quality(self.behaviour(weights))
        models = [
            {"id": f"run{run:03d}-step{step}", "run": run, "step": step, "seed": run,
             "split": "train" if run < TRAIN_RUNS else "heldout",
             "quality": round(float(accuracy[i * CHECKPOINTS + j]), 6)}
            for i, run in enumerate(runs) for j, step in enumerate(steps)
        ]
        recipe = {"optimizer": "adam", "lr": LR, "epochs": EPOCHS, "batch_size": BATCH_SIZE,
                  "checkpoints": f"after each of the last {CHECKPOINTS} epochs",
                  "data": "sklearn.datasets.load_digits, stratified split, "
                          f"{TEST_SIZE} test examples, random_state={SPLIT_SEED}",
                  "seeds": "run r uses seed r"}
        return BuiltZoo(weights=weights, models=models, provenance={"recipe": recipe})


@hookimpl
def register_datasets(register):
    register(DigitsMLP)
