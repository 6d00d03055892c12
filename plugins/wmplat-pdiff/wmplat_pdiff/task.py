"""The dataset plugin `digits-pdiff`: a p-diff zoo, built locally in seconds.

p-diff (Wang et al. 2024) learns from the last iterates of one training run in which only the
last normalization layers of an otherwise frozen network keep training. This task builds that
zoo on scikit-learn's digits: a base network trained once (all parameters), then runs that train
only the LayerNorm affine parameters from the frozen base. Run 0's last 200 iterates are the
train split; 32 independent runs (other seeds: their own start of the subset and data order)
give the heldout split. Every model is a full parameter vector, the frozen part identical in all.
"""

import functools
import math

import torch

import wmplat

from .network import HIDDEN, SPEC, SUBSET, flat, forward, init_params

TEST_SIZE, SPLIT_SEED = 500, 0
TRAIN_EXAMPLES = 300
BASE_SEED, BASE_EPOCHS, BASE_LR = 0, 20, 3e-3
BATCH_SIZE = 32
SUBSET_STEPS, SUBSET_LR, SUBSET_INIT_STD = 600, 1e-2, 0.5
TRAIN_ITERATES, HELDOUT_RUNS, HELDOUT_ITERATES = 200, 32, 5


@functools.cache
def digits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x_train, y_train, x_test, y_test), pixels scaled to [0, 1]: the test set of
    `digits-mlp` (500 images, stratified, random_state 0) and a stratified 300 of the rest for
    training, so that models err on about 5% of the test set and IoU of errors has resolution."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x_rest, x_te, y_rest, y_te = train_test_split(
        data.data / 16.0, data.target, test_size=TEST_SIZE, stratify=data.target,
        random_state=SPLIT_SEED)
    x_tr, _, y_tr, _ = train_test_split(x_rest, y_rest, train_size=TRAIN_EXAMPLES,
                                        stratify=y_rest, random_state=SPLIT_SEED)
    as_x = functools.partial(torch.tensor, dtype=torch.float32)
    as_y = functools.partial(torch.tensor, dtype=torch.long)
    return as_x(x_tr), as_y(y_tr), as_x(x_te), as_y(y_te)


def train_base() -> dict[str, torch.Tensor]:
    """The network every model shares: all parameters trained with Adam, one run."""
    x, y, _, _ = digits()
    steps = BASE_EPOCHS * wmplat.epoch_steps(len(x), BATCH_SIZE)
    names = [name for name, _ in SPEC]
    kept, _ = wmplat.train_stacked(forward, init_params(BASE_SEED), x, y, [BASE_SEED],
                                   steps=steps, batch_size=BATCH_SIZE, lr=BASE_LR, keep=[steps],
                                   trainable=names)
    parts = kept[:, 0].split([math.prod(shape) for _, shape in SPEC], dim=1)
    return {name: part.reshape(1, *shape) for (name, shape), part in zip(SPEC, parts, strict=True)}


def train_subsets(base: dict[str, torch.Tensor], seeds: list[int], keep: int) -> torch.Tensor:
    """One run per seed, all at once: only the norms' gamma and beta train, each run starting
    from the base's values plus N(0, SUBSET_INIT_STD^2) noise drawn from its seed, on its own
    data order. Returns the subset after each of the last `keep` steps, [runs, keep, subset]."""
    x, y, _, _ = digits()
    starts = []
    for seed in seeds:
        g = wmplat.random_generator(seed)
        starts.append({n: base[n][0] + SUBSET_INIT_STD * torch.randn(HIDDEN, generator=g)
                       for n in SUBSET})
    params = {n: v.expand(len(seeds), *v.shape[1:]) for n, v in base.items()}
    params.update({n: torch.stack([s[n] for s in starts]) for n in SUBSET})
    kept, _ = wmplat.train_stacked(forward, params, x, y, seeds, steps=SUBSET_STEPS,
                                   batch_size=BATCH_SIZE, lr=SUBSET_LR,
                                   keep=range(SUBSET_STEPS - keep + 1, SUBSET_STEPS + 1),
                                   trainable=SUBSET)
    return kept


def paste(base: dict[str, torch.Tensor], subset: torch.Tensor) -> torch.Tensor:
    """Subset values [n, 4 * HIDDEN] into the base network -> full flat models [n, params]."""
    params = {n: v.expand(len(subset), *v.shape[1:]) for n, v in base.items()}
    params.update(zip(SUBSET, subset.split(HIDDEN, dim=1), strict=True))
    return flat(params)


class DigitsPdiff(wmplat.ClassifierTask):
    name = "digits-pdiff"
    description = ("p-diff zoo: MLP 64-128-128-10 with two LayerNorms on scikit-learn's digits; "
                   "only the norms' gamma/beta train (512 of 26,634 parameters); train = the "
                   "last 200 iterates of one run, heldout = 32 independent runs")
    architecture = ("mlp 64-128-128-10, LayerNorm after each hidden linear layer, relu "
                    "(26,634 parameters; trained subset: norm1/norm2 weight and bias, 512)")
    license = "CC-BY-4.0"
    version = "1"
    # The paper's sigmas for p-diff, literally: LayerNorm's gamma and beta act on normalized
    # activations, as BatchNorm's do, so they are in the same units in both networks.
    baseline_settings = {
        "noise": [{"sigma": 0.06, "params": list(SUBSET)},
                  {"sigma": 0.12, "params": list(SUBSET)}],
        "average": [{"k": 16}],
    }
    behaviour_chunk = 64

    @property
    def param_spec(self):
        return list(SPEC)

    # No permutation groups: permuting hidden units would change the frozen part that every
    # model shares, so the identity is the alignment and aligned distances equal plain ones.

    def test_data(self):
        _, _, x_test, y_test = digits()
        return x_test, y_test

    def forward(self, params, x):
        return forward(params, x)

    def build_zoo(self) -> wmplat.BuiltZoo:
        wmplat.status(f"digits-pdiff: training the base network ({BASE_EPOCHS} epochs)")
        base = train_base()
        seeds = list(range(1 + HELDOUT_RUNS))
        wmplat.status(f"digits-pdiff: training the norms of {len(seeds)} runs "
                      f"({SUBSET_STEPS} steps)")
        kept = train_subsets(base, seeds, TRAIN_ITERATES)
        steps = list(range(SUBSET_STEPS - TRAIN_ITERATES + 1, SUBSET_STEPS + 1))
        rows, models = [], []
        for run in seeds:
            split, keep = ("train", TRAIN_ITERATES) if run == 0 else ("heldout", HELDOUT_ITERATES)
            rows.append(kept[run, -keep:])
            models += [{"id": f"run{run:03d}-step{step}", "run": run, "step": step,
                        "seed": run, "split": split, "quality": 0.0} for step in steps[-keep:]]
        weights = paste(base, torch.cat(rows))
        accuracy = self.quality(self.behaviour(weights))
        for model, acc in zip(models, accuracy, strict=True):
            model["quality"] = round(float(acc), 6)
        return wmplat.BuiltZoo(weights=weights, models=models, provenance={"recipe": RECIPE})


RECIPE = {
    "data": f"sklearn.datasets.load_digits / 16; test: {TEST_SIZE} examples, stratified, "
            f"random_state={SPLIT_SEED} (as digits-mlp); train: a stratified "
            f"{TRAIN_EXAMPLES} of the rest, random_state={SPLIT_SEED}",
    "base": f"all parameters, adam lr {BASE_LR}, {BASE_EPOCHS} epochs, batch {BATCH_SIZE}, "
            f"seed {BASE_SEED}",
    "subset": list(SUBSET),
    "subset_training": f"only the subset, adam lr {SUBSET_LR}, {SUBSET_STEPS} steps, batch "
                      f"{BATCH_SIZE}; run r (seed r) starts from the base's subset plus "
                      f"N(0, {SUBSET_INIT_STD}^2) noise and shuffles with seed r + 7919",
    "train": f"run 0, the last {TRAIN_ITERATES} iterates (one per step)",
    "heldout": f"runs 1-{HELDOUT_RUNS}, the last {HELDOUT_ITERATES} iterates of each",
}

