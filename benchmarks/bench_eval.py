"""Benchmark: wmplat's evaluation engine against a paper-style reference, side by side.

Scores samples with `accuracy`, `max_similarity` and `min_l2` against a zoo of digits-mlp
(2,410 parameters, 500 test examples) at 1,000 x 1,000 and 10,000 x 10,000, checks that both
ways agree (IoU exactly; L2 within 1e-6 absolute plus 1e-9 relative; accuracy within 1e-6),
and prints times, speed-ups, peak memory and the bound set by the matrix products alone. At
1,000 x 1,000 it also runs `aligned_l2` and `hull_residual` against the per-pair alignment
(bench_align.py, which explains it). Its last line is the 10k speed-up.

    python benchmarks/bench_eval.py [--skip-aligned]

Runs in a few minutes on two cores; timings are noisy on a shared machine, which is why the
reference and the engine are timed in the same run.
"""

import argparse
import sys
import tempfile
from pathlib import Path

import torch
from bench_align import compare_aligned
from common import clock, describe_machine, peak_rss_bytes, reset_peak_rss, train_digits

from wmplat.engine.budget import memory_budget
from wmplat.metric import BehaviourCache, EvalContext
from wmplat.metrics.accuracy import Accuracy
from wmplat.metrics.max_similarity import MaxSimilarity
from wmplat.metrics.min_l2 import MinL2
from wmplat.task import BuiltZoo
from wmplat.tasks.digits_mlp import DigitsMLP
from wmplat.zoo.format import load_zoo, write_zoo
from wmplat.zoo.params import unflatten

TRAIN_RUNS, FRESH_RUNS, CHECKPOINTS = 100, 20, 10   # checkpoints: after each of the last epochs
COPY_SIGMA = 0.02                         # noise of the extra checkpoints of the 10k zoo
SAMPLE_KINDS = ("replica", "near-duplicate", "noisy copy", "average of two", "fresh model")
ENGINE_REPEATS = 2                        # the engine and the bound: best of these
REFERENCE_SAMPLES = 500                   # of the 10k samples, timed with the reference
L2_ATOL, L2_RTOL = 1e-6, 1e-9
ACCURACY_ATOL = 1e-6                      # float32 accuracy against the float64 one


# --- the data -----------------------------------------------------------------------------

def grow(real: torch.Tensor, n: int, g: torch.Generator) -> torch.Tensor:
    """The real checkpoints, then noisy copies of random ones up to n."""
    source = real[torch.randint(len(real), (n - len(real),), generator=g)]
    return torch.cat([real, source + COPY_SIGMA * torch.randn(source.shape, generator=g)])


def make_samples(train: torch.Tensor, fresh: torch.Tensor, n: int,
                 g: torch.Generator) -> torch.Tensor:
    """n samples, a fifth of each kind of SAMPLE_KINDS, shuffled."""
    k = n // len(SAMPLE_KINDS)

    def pick(pool):
        return pool[torch.randint(len(pool), (k,), generator=g)]

    def noise(sigma):
        return sigma * torch.randn(k, train.shape[1], generator=g)

    kinds = [pick(train), pick(train) + noise(1e-6), pick(train) + noise(0.01),
             (pick(train) + pick(train)) / 2, pick(fresh)]
    samples = torch.cat(kinds)
    return samples[torch.randperm(len(samples), generator=g)].contiguous()


def as_zoo(task, train: torch.Tensor, heldout: torch.Tensor, folder: Path):
    """A real zoo folder with these splits (each model its own run; quality is not used)."""
    folder.mkdir()
    splits = ["train"] * len(train) + ["heldout"] * len(heldout)
    models = [{"id": f"m{i}", "run": i, "step": 0, "split": split, "seed": 0, "quality": 0.0}
              for i, split in enumerate(splits)]
    weights = torch.cat([train, heldout])
    write_zoo(folder, "bench", task, BuiltZoo(weights=weights, models=models))
    return load_zoo(folder, task)


# --- wmplat's engine ----------------------------------------------------------------------

def engine(zoo, samples: torch.Tensor) -> dict[str, torch.Tensor]:
    """The three metrics as `wmplat evaluate` runs them, train behaviour not yet cached."""
    ctx = EvalContext(samples=samples, zoo=zoo, cache=BehaviourCache(zoo))
    out = {}
    for metric in (Accuracy(), MaxSimilarity(), MinL2()):
        out.update(metric.compute(ctx).per_sample)
    return out


# --- the paper-style reference: one model at a time ----------------------------------------

class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = torch.nn.Linear(64, 32), torch.nn.Linear(32, 10)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


def reference_errors(task, net: Net, flat: torch.Tensor) -> torch.Tensor:
    """Load one checkpoint into the module, predict the test set: bool [m], True where wrong."""
    x, y = task.test_data()
    net.load_state_dict({k: v[0] for k, v in unflatten(flat[None], task.param_spec).items()})
    with torch.no_grad():
        return net(x).argmax(dim=1) != y


def reference_train(task, train: torch.Tensor) -> dict:
    """What the reference prepares once: the train checkpoints' error sets, float64 weights."""
    net = Net()
    return {"net": net, "errors": torch.stack([reference_errors(task, net, w) for w in train]),
            "weights": train.double()}


def reference_sample(task, prepared: dict, flat: torch.Tensor) -> tuple[float, float, float]:
    """(accuracy, max IoU over train, min float64 L2 over train) of one sample."""
    errors = reference_errors(task, prepared["net"], flat)
    train_errors = prepared["errors"]
    inter = (train_errors & errors).sum(dim=1).double()
    union = (train_errors | errors).sum(dim=1).double()
    iou = torch.where(union > 0, inter / union.clamp(min=1), 1.0)
    l2 = (prepared["weights"] - flat.double()).norm(dim=1)
    accuracy = 1.0 - errors.double().mean()
    return float(accuracy), float(iou.max()), float(l2.min())


def reference(task, train: torch.Tensor, samples: torch.Tensor, times: dict) -> dict:
    with clock(times, "reference train"):
        prepared = reference_train(task, train)
    with clock(times, "reference samples"):
        rows = [reference_sample(task, prepared, s) for s in samples]
    values = torch.tensor(rows, dtype=torch.float64)
    return {"accuracy": values[:, 0], "max_similarity": values[:, 1], "min_l2": values[:, 2]}


# --- checks and the GEMM bound -------------------------------------------------------------

def disagreements(ours: dict, ref: dict) -> dict[str, int]:
    """Samples on which the engine and the reference differ, per metric. IoU is compared exactly
    after rounding the reference's float64 quotient to float32, which gives the correctly rounded
    float32 quotient, as the engine computes it."""
    l2_ok = (ours["min_l2"] - ref["min_l2"]).abs() <= L2_ATOL + L2_RTOL * ref["min_l2"]
    return {"max_similarity": int((ours["max_similarity"] != ref["max_similarity"].float()).sum()),
            "accuracy": int(((ours["accuracy"] - ref["accuracy"]).abs() > ACCURACY_ATOL).sum()),
            "min_l2": int((~l2_ok).sum())}


def gemm_bound(task, train: torch.Tensor, samples: torch.Tensor) -> float:
    """Seconds of just the two matrix products any exact method does, in float32: the 0/1
    misclassification matrices (samples x m)(m x train) and the weight Gram (samples x P)(P x
    train), in blocks of rows so the output stays small."""
    x, y = task.test_data()
    ea = (torch.rand(len(samples), len(x)) < 0.05).float()   # the values do not matter
    eb = (torch.rand(len(train), len(x)) < 0.05).float()
    times: dict = {}
    for start in range(0, len(samples), 2000):
        with clock(times, "gemm"):
            torch.mm(ea[start:start + 2000], eb.T)
            torch.mm(samples[start:start + 2000], train.T)
    return times["gemm"]


# --- the runs ------------------------------------------------------------------------------

def timed_engine(zoo, samples, repeats: int) -> tuple[list[float], dict]:
    """The engine's times over `repeats` runs (each with a fresh behaviour cache), its scores."""
    seconds = []
    for _ in range(repeats):
        times: dict = {}
        with clock(times, "ours"):
            ours = engine(zoo, samples)
        seconds.append(times["ours"])
    return seconds, ours


def run_small(task, real, fresh, g, folder, aligned: bool) -> None:
    train = real
    samples = make_samples(train, fresh, 1000, g)
    print(f"\n== {len(samples):,} samples x {len(train):,} training checkpoints ==")
    zoo = as_zoo(task, train, fresh, folder / "small")
    seconds, ours = timed_engine(zoo, samples, ENGINE_REPEATS)
    times: dict = {}
    ref = reference(task, train, samples, times)
    ref_time = times["reference train"] + times["reference samples"]
    print(f"reference (model by model, per-sample IoU and float64 L2): {ref_time:8.2f} s")
    print(f"wmplat engine, best of {len(seconds)} ({', '.join(f'{s:.2f}' for s in seconds)}):"
          f"{' ' * 21}{min(seconds):8.2f} s")
    print(f"speed-up: {ref_time / min(seconds):.1f}x (target >= 15x)")
    print(f"samples that disagree: {disagreements(ours, ref)}")
    if aligned:
        print("\n".join(compare_aligned(task, train, samples)))


def run_large(task, real, fresh, g, folder) -> float:
    train = grow(real, 10_000, g)
    samples = make_samples(train, fresh, 10_000, g)
    print(f"\n== {len(samples):,} samples x {len(train):,} training checkpoints ==")
    zoo = as_zoo(task, train, fresh, folder / "large")
    fresh_peak = reset_peak_rss()
    seconds, ours = timed_engine(zoo, samples, ENGINE_REPEATS)
    peak = peak_rss_bytes()
    bound = min(gemm_bound(task, train, samples) for _ in range(ENGINE_REPEATS))
    times: dict = {"ours": min(seconds)}
    subset = torch.arange(0, len(samples), len(samples) // REFERENCE_SAMPLES)
    ref = reference(task, train, samples[subset], times)
    scale = len(samples) / len(subset)
    ref_time = times["reference train"] + scale * times["reference samples"]
    speedup = ref_time / times["ours"]
    print(f"wmplat engine: {times['ours']:.2f} s, best of {len(seconds)} "
          f"({', '.join(f'{s:.2f}' for s in seconds)}); peak RSS {peak / 2**30:.2f} GiB"
          f"{'' if fresh_peak else ' (process lifetime)'} (target < 2 GiB), "
          f"memory budget {memory_budget() / 2**20:.0f} MiB")
    print(f"GEMM bound (float32 error-matrix and weight Gram products only, best of "
          f"{ENGINE_REPEATS}): {bound:.2f} s; "
          f"engine = {times['ours'] / bound:.2f}x the bound (target <= 3x)")
    print(f"reference: its {len(train):,} training checkpoints' forward passes "
          f"{times['reference train']:.2f} s (all timed) + per-sample work "
          f"{times['reference samples']:.2f} s on {len(subset)} samples, scaled linearly "
          f"x{scale:.0f} = {ref_time:.1f} s")
    print(f"speed-up: {speedup:.1f}x (target >= 50x)")
    picked = {k: v[subset] for k, v in ours.items()}
    print(f"samples that disagree (of the {len(subset)} the reference scored): "
          f"{disagreements(picked, ref)}")
    return speedup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-aligned", action="store_true",
                        help="leave out aligned_l2 and hull_residual (a few minutes)")
    args = parser.parse_args()
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    task = DigitsMLP()
    print(f"machine: {describe_machine()}")
    times: dict = {}
    with clock(times, "train"):
        ckpts = train_digits(range(TRAIN_RUNS + FRESH_RUNS), CHECKPOINTS)
    real = ckpts[:TRAIN_RUNS].flatten(0, 1)
    fresh = ckpts[TRAIN_RUNS:].flatten(0, 1)
    print(f"data: {TRAIN_RUNS + FRESH_RUNS} digits MLPs trained with the digits-mlp recipe "
          f"({times['train']:.0f} s, or cached), checkpoints after each of the last "
          f"{CHECKPOINTS} epochs: {len(real):,} real checkpoints from {TRAIN_RUNS} runs, "
          f"{len(fresh)} from {FRESH_RUNS} other runs.")
    print(f"  1k zoo: the {len(real):,} real checkpoints. 10k zoo: those plus noisy copies "
          f"(sigma {COPY_SIGMA}) of random ones.")
    print(f"  samples: equal parts {', '.join(SAMPLE_KINDS)}: exact copies of zoo checkpoints, "
          "copies plus N(0, 1e-6), copies plus N(0, 0.01), means of two random checkpoints, "
          "checkpoints of the other runs.")
    with tempfile.TemporaryDirectory() as tmp:
        run_small(task, real, fresh, g, Path(tmp), not args.skip_aligned)
        speedup = run_large(task, real, fresh, g, Path(tmp))
    print(f"{speedup:.0f}x")


if __name__ == "__main__":
    sys.exit(main())
