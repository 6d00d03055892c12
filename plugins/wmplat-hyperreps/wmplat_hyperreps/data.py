"""MNIST-1D (Greydanus 2020), generated locally by the `mnist1d` package: no download.

4,000 training and 1,000 test signals of length 40, ten classes. `mnist1d.data.make_dataset`
seeds numpy's global generator; the state is restored afterwards so that generating the data
leaves the caller's randomness alone. The tensors are cached under `$WMPLAT_HOME/data`.
"""

import functools
import os
import random
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

DATA_SEED = 42      # mnist1d's default: the data set of the MNIST-1D paper


def cache_dir() -> Path:
    home = os.environ.get("WMPLAT_HOME") or Path.home() / ".cache" / "wmplat"
    return Path(home) / "data"


@functools.cache
def mnist1d_split() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x_train [4000, 40], y_train, x_test [1000, 40], y_test), float32 and int64."""
    path = cache_dir() / f"mnist1d-seed{DATA_SEED}.safetensors"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        save_file(generate(), tmp)
        os.replace(tmp, path)
    data = load_file(path)
    return data["x_train"], data["y_train"], data["x_test"], data["y_test"]


def generate() -> dict[str, torch.Tensor]:
    import numpy as np
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.seed = DATA_SEED
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(args)       # builds the signals; never fetches args.url
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return {"x_train": torch.tensor(data["x"], dtype=torch.float32),
            "y_train": torch.tensor(data["y"], dtype=torch.long),
            "x_test": torch.tensor(data["x_test"], dtype=torch.float32),
            "y_test": torch.tensor(data["y_test"], dtype=torch.long)}
