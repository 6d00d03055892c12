"""Benchmark: the default zoo's models trained as one batched computation, then one by one.

The digits-mlp recipe (96 runs, 30 epochs, checkpoints after each of the last 5), both ways;
checks that the checkpoints and their test accuracies are the same, and prints the speed-up last.

    python benchmarks/bench_zoo.py

About two minutes on two quiet cores. Training run by run is many tiny operations: beside other
busy processes, OpenMP's spinning threads can make it ten times slower; OMP_WAIT_POLICY=passive
avoids that (docs/engine.md).
"""

import torch
from common import clock, describe_machine

from wmplat.tasks.digits_mlp import (
    BATCH_SIZE,
    CHECKPOINTS,
    EPOCHS,
    HELDOUT_RUNS,
    LR,
    SIZES,
    TRAIN_RUNS,
    DigitsMLP,
    digits_split,
)
from wmplat.tasks.mlp import train_mlps


def train(seeds) -> torch.Tensor:
    x, y, _, _ = digits_split()
    checkpoints, _ = train_mlps(x, y, SIZES, seeds=seeds, epochs=EPOCHS, batch_size=BATCH_SIZE,
                                lr=LR, keep_last=CHECKPOINTS)
    return checkpoints.flatten(0, 1)


def main() -> None:
    task = DigitsMLP()
    seeds = list(range(TRAIN_RUNS + HELDOUT_RUNS))
    print(f"machine: {describe_machine()}")
    print(f"digits-mlp zoo: {len(seeds)} runs x {EPOCHS} epochs, {CHECKPOINTS} checkpoints each")
    times: dict = {}
    train([0])                                   # warm up: first calls pay one-time costs
    with clock(times, "batched"):
        batched = train(seeds)
    with clock(times, "one by one"):
        alone = torch.cat([train([seed]) for seed in seeds])
    same_weights = torch.equal(batched, alone)
    accuracy = [task.quality(task.behaviour(w)) for w in (batched, alone)]
    print(f"batched:    {times['batched']:7.1f} s")
    print(f"one by one: {times['one by one']:7.1f} s")
    print(f"checkpoints identical: {same_weights}; accuracies identical: "
          f"{torch.equal(*accuracy)} (mean {accuracy[0].mean():.4f} over {len(batched)})")
    print(f"speed-up (target >= 5x):\n{times['one by one'] / times['batched']:.1f}x")


if __name__ == "__main__":
    main()
