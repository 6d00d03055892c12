"""Fit `gpt` with the options given as JSON on the built mnist-gpt zoo and print the fit's CPU
time and the accuracy and test loss of 50 one-step-prompted samples: how the README's table
of defaults was measured.

    OMP_NUM_THREADS=1 python benchmarks/sample_quality.py '{"augment": true}'
"""

import json
import sys
import time

import torch
from wmplat_gpt.method import GPT

from wmplat.plugins import load_plugins
from wmplat.zoo.catalogue import open_zoo


def main(options: dict) -> None:
    torch.set_num_threads(1)
    zoo = open_zoo("mnist-gpt", load_plugins(), None)
    method = GPT(**{"prompt_alignment": False, **options})
    start = time.process_time()
    method.fit(zoo.without_heldout(), 0)
    fit = time.process_time() - start
    samples = method.sample(50, 0)
    accuracy = zoo.task.quality(zoo.task.behaviour(samples))
    loss = zoo.task.model_metadata(samples)["avg_test_loss"]
    print(f"{options}: fit {fit:.0f} s CPU, accuracy mean {accuracy.mean():.3f} "
          f"(min {accuracy.min():.3f}), test loss mean {loss.mean():.3f}")


if __name__ == "__main__":
    main(json.loads(sys.argv[1]) if len(sys.argv) > 1 else {})
