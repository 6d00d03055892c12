"""What both benchmarks share: a wall clock, peak memory, and the digits recipe's trainer."""

import os
import resource
import time
from contextlib import contextmanager

import torch
from safetensors.torch import load_file, save_file

from wmplat.engine.atomic import write_atomic
from wmplat.tasks.digits_mlp import BATCH_SIZE, EPOCHS, LR, SIZES, digits_split
from wmplat.tasks.mlp import train_mlps
from wmplat.zoo.home import home


@contextmanager
def clock(into: dict, key: str):
    """Adds the seconds the block takes to into[key]."""
    start = time.perf_counter()
    yield
    into[key] = into.get(key, 0.0) + time.perf_counter() - start


def reset_peak_rss() -> bool:
    """Start a fresh peak-RSS measurement (Linux); False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int:
    """Peak resident memory since `reset_peak_rss`, or since start where that failed."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def train_digits(seeds, keep_last: int) -> torch.Tensor:
    """The digits-mlp recipe for the given seeds, all at once: [runs, keep_last, num_params].

    Cached under $WMPLAT_HOME/benchmarks, as the default zoo is: on a busy machine, training
    can take longer than the benchmark itself.
    """
    seeds = list(seeds)
    cache = home() / "benchmarks" / f"digits-{seeds[0]}-{seeds[-1]}-{keep_last}.safetensors"
    if not cache.is_file():
        x, y, _, _ = digits_split()
        checkpoints, _ = train_mlps(x, y, SIZES, seeds=seeds, epochs=EPOCHS,
                                    batch_size=BATCH_SIZE, lr=LR, keep_last=keep_last)
        write_atomic(cache, lambda tmp: save_file({"checkpoints": checkpoints}, tmp))
    return load_file(cache)["checkpoints"]


def describe_machine() -> str:
    """Torch's version and threads, the CPUs, and the OpenMP settings that change timings."""
    omp = ", ".join(f"{k}={os.environ[k]}" for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")
                    if k in os.environ)
    return (f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
            + (f", {omp}" if omp else ""))
