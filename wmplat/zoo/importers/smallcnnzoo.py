"""`--format smallcnnzoo`: the layout of Unterthiner et al.'s Small CNN Zoo. `weights.npy` holds
one row per checkpoint, `metrics.csv.gz` one line per row, in the same order (`modeldir`: the
run, `step`, `test_accuracy`, `config.*`), and `layout.csv` where each variable lies in a row
(`varname,start_idx,end_idx,shape`), in TensorFlow's axis order: convolution kernels
`(kh, kw, in, out)` become `(out, in, kh, kw)`, dense kernels `(in, out)` become `(out, in)`.

The variables, in layout order, are the task's parameters in its order (TensorFlow's kernel,
bias per layer is torch's weight, bias); `--rename` is not used. `weights.npy` is read with
`numpy.load(allow_pickle=False)`.
"""

import csv
import gzip
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from ...errors import ConfigError, ZooError
from ..params import ParamSpec
from .checkpoint import Checkpoint

WEIGHTS, METRICS, LAYOUT = "weights.npy", "metrics.csv.gz", "layout.csv"
SEED_COLUMNS = ("config.random_seed", "config.seed")


def read_smallcnnzoo(src: Path, spec: ParamSpec) -> Iterator[Checkpoint]:
    for name in (WEIGHTS, METRICS, LAYOUT):
        if not (src / name).is_file():
            raise ConfigError(f"{src}: no {name}; a Small CNN Zoo folder holds {WEIGHTS}, "
                              f"{METRICS} and {LAYOUT}")
    layout = read_layout(src / LAYOUT, spec)
    try:
        weights = np.load(src / WEIGHTS, allow_pickle=False, mmap_mode="r")
    except (ValueError, OSError) as exc:
        raise ZooError(f"{src / WEIGHTS}: not a numpy array file that loads without pickle "
                       f"({exc})") from None
    rows = read_metrics(src / METRICS)
    if weights.ndim != 2 or len(weights) != len(rows):
        raise ZooError(f"{src / WEIGHTS}: shape {list(weights.shape)}, expected one row for each "
                       f"of the {len(rows)} lines of {METRICS}")
    runs = {r: i for i, r in enumerate(sorted({row["modeldir"] for row in rows}))}
    for i, row in enumerate(rows):
        where = f"{src / WEIGHTS} row {i} ({row['modeldir']}, step {row.get('step')})"
        flat = torch.from_numpy(np.array(weights[i]))
        params = {name: convert(flat[start:end].reshape(tf_shape)) for name, start, end, tf_shape
                  in layout}
        run = runs[row["modeldir"]]
        seed = next((row[c] for c in SEED_COLUMNS if row.get(c) not in (None, "")), run)
        accuracy = row.get("test_accuracy")
        yield Checkpoint(source=where, run=run, step=_int(row.get("step", "0"), where),
                         seed=_int(seed, where), params=params,
                         recorded_quality=float(accuracy) if accuracy not in (None, "") else None)


def convert(tensor: torch.Tensor) -> torch.Tensor:
    """TensorFlow's axis order to torch's."""
    if tensor.ndim == 4:
        return tensor.permute(3, 2, 0, 1).contiguous()
    if tensor.ndim == 2:
        return tensor.T.contiguous()
    return tensor


def read_layout(path: Path, spec: ParamSpec) -> list[tuple[str, int, int, tuple[int, ...]]]:
    """(task parameter name, start, end, TensorFlow shape) for each variable, in order."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if len(rows) != len(spec):
        raise ZooError(f"{path}: {len(rows)} variables, the task has {len(spec)} parameters "
                       f"({', '.join(n for n, _ in spec)}); fix the task file's architecture")
    layout = []
    for row, (name, _) in zip(rows, spec, strict=True):
        try:
            start, end = int(row["start_idx"]), int(row["end_idx"])
            shape = tuple(int(x) for x in re.findall(r"\d+", row["shape"]))
        except (KeyError, ValueError, TypeError):
            raise ZooError(f"{path}: needs columns varname,start_idx,end_idx,shape") from None
        if end - start != int(np.prod(shape)):
            raise ZooError(f"{path}: {row['varname']} spans {end - start} values, its shape "
                           f"{list(shape)} holds {int(np.prod(shape))}")
        layout.append((name, start, end, shape))
    return layout


def read_metrics(path: Path) -> list[dict[str, str]]:
    try:
        with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, EOFError) as exc:
        raise ZooError(f"{path}: not a gzipped CSV file ({exc})") from None
    if not rows or "modeldir" not in rows[0]:
        raise ZooError(f"{path}: needs a modeldir column (the run of each row)")
    return rows


def _int(value, where: str) -> int:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        raise ZooError(f"{where}: {value!r} is not an integer") from None
