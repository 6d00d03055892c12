"""The dataset plugin `digits-pdiff`: a p-diff zoo, built locally in seconds.

p-diff (Wang et al. 2024) learns from the last iterates of one training run in which only the
last normalization layers of an otherwise frozen network keep training. This task builds that
zoo on scikit-learn's digits: a base network trained once (all parameters), then runs that train
only the LayerNorm affine parameters from the frozen base. Run 0's last 200 iterates are the
train split; 32 independent runs (other seeds: their own start of the subset and data order)
give the heldout split. Every model is a full parameter vector, the frozen part identical in all.
"""

import functools

import torch
import torch.nn.functional as F

import wmplat

from .log import say
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
    params = {k: v.clone().requires_grad_(True) for k, v in init_params(BASE_SEED).items()}
    optimizer = torch.optim.Adam(params.values(), lr=BASE_LR)
    order = torch.Generator().manual_seed(BASE_SEED + 7919)
    for _ in range(BASE_EPOCHS):
        for idx in torch.randperm(len(x), generator=order).split(BATCH_SIZE):
            loss = F.cross_entropy(forward(params, x[idx])[0], y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return {k: v.detach() for k, v in params.items()}


def train_subsets(base: dict[str, torch.Tensor], seeds: list[int], keep: int) -> torch.Tensor:
    """One run per seed, all at once: only the norms' gamma and beta train, each run starting
    from the base's values plus N(0, SUBSET_INIT_STD^2) noise drawn from its seed, on its own
    data order. Returns the subset after each of the last `keep` steps, [runs, keep, subset]."""
    x, y, _, _ = digits()
    runs = len(seeds)
    starts = []
    for seed in seeds:
        g = torch.Generator().manual_seed(seed)
        starts.append({n: base[n][0] + SUBSET_INIT_STD * torch.randn(HIDDEN, generator=g)
                       for n in SUBSET})
    subset = {n: torch.stack([s[n] for s in starts]).requires_grad_(True) for n in SUBSET}
    frozen = {n: v.expand(runs, *v.shape[1:]) for n, v in base.items() if n not in SUBSET}
    optimizer = torch.optim.Adam(subset.values(), lr=SUBSET_LR)
    orders = [torch.Generator().manual_seed(seed + 7919) for seed in seeds]
    kept, step = [], 0
    while step < SUBSET_STEPS:
        epoch = torch.stack([torch.randperm(len(x), generator=g) for g in orders])
        for idx in epoch.split(BATCH_SIZE, dim=1):
            logits = forward({**frozen, **subset}, x[idx])
            # Sum over runs of each run's mean loss: the runs' gradients stay independent.
            loss = F.cross_entropy(logits.flatten(0, 1), y[idx].flatten(), reduction="sum")
            optimizer.zero_grad(set_to_none=True)
            (loss / idx.shape[1]).backward()
            optimizer.step()
            step += 1
            if step > SUBSET_STEPS - keep:
                kept.append(torch.cat([subset[n].detach() for n in SUBSET], dim=1))
            if step == SUBSET_STEPS:
                break
    return torch.stack(kept, dim=1)


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
        say(f"digits-pdiff: training the base network ({BASE_EPOCHS} epochs)")
        base = train_base()
        seeds = list(range(1 + HELDOUT_RUNS))
        say(f"digits-pdiff: training the norms of {len(seeds)} runs ({SUBSET_STEPS} steps)")
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

