"""Benchmark: formulations of the forward pass of many digits MLPs at once (docs/engine.md).

Times the predictions of 4,000 models on the 500 test examples, and checks that every
formulation gives the same logits bit for bit:

- loop: one torch.nn.Module per model, as a paper's evaluation script does;
- vmap: torch.func.functional_call under torch.func.vmap over the stacked weights;
- matmul: wmplat's mlp_forward, broadcast batched matmul, at several chunk sizes;
- baddbmm: bias fused into the batched product, inputs expanded;
- wide: the first layer of all models as one wide matrix product [m, in] x [in, n*hidden].

    python benchmarks/bench_forward.py
"""

import time

import torch
from torch.func import functional_call, vmap

from wmplat.tasks.digits_mlp import SIZES, DigitsMLP
from wmplat.tasks.mlp import init_mlp, mlp_forward
from wmplat.zoo.params import unflatten

MODELS = 4000


def loop(params, x):
    net = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    out = []
    for i in range(len(params["fc1.weight"])):
        net.load_state_dict({"0.weight": params["fc1.weight"][i], "0.bias": params["fc1.bias"][i],
                             "2.weight": params["fc2.weight"][i], "2.bias": params["fc2.bias"][i]})
        out.append(net(x))
    return torch.stack(out)


def vmapped(params, x):
    net = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    renamed = {"0.weight": params["fc1.weight"], "0.bias": params["fc1.bias"],
               "2.weight": params["fc2.weight"], "2.bias": params["fc2.bias"]}
    return vmap(lambda p: functional_call(net, p, (x,)))(renamed)


def baddbmm(params, x):
    n = len(params["fc1.weight"])
    h = torch.baddbmm(params["fc1.bias"].unsqueeze(1), x.expand(n, -1, -1),
                      params["fc1.weight"].transpose(1, 2)).relu_()
    return torch.baddbmm(params["fc2.bias"].unsqueeze(1), h, params["fc2.weight"].transpose(1, 2))


def wide(params, x):
    n, hidden = params["fc1.weight"].shape[:2]
    h = (x @ params["fc1.weight"].reshape(n * hidden, -1).T).view(len(x), n, hidden)
    h = h.transpose(0, 1).add(params["fc1.bias"].unsqueeze(1)).relu_()
    return torch.matmul(h, params["fc2.weight"].transpose(1, 2)) + params["fc2.bias"].unsqueeze(1)


def timed(forward, weights, spec, x, chunk):
    start = time.perf_counter()
    with torch.no_grad():
        logits = torch.cat([forward(unflatten(c, spec), x) for c in weights.split(chunk)])
    return time.perf_counter() - start, logits


def main() -> None:
    task = DigitsMLP()
    x, _ = task.test_data()
    spec = task.param_spec
    weights = torch.cat([torch.cat([p.reshape(len(p), -1) for p in init_mlp(SIZES, range(
        start, start + 500)).values()], dim=1) for start in range(0, MODELS, 500)])
    print(f"{MODELS:,} digits MLPs x {len(x)} test examples, {torch.get_num_threads()} threads; "
          "best of 3, seconds per 10,000 models")
    _, expected = timed(mlp_forward, weights, spec, x, 256)
    cases = [("loop", loop, MODELS), ("vmap", vmapped, 256)]
    cases += [(f"matmul, chunk {c}", mlp_forward, c) for c in (16, 64, 256, 1024, 4000)]
    cases += [("baddbmm, chunk 64", baddbmm, 64), ("wide, chunk 64", wide, 64)]
    for name, forward, chunk in cases:
        best = float("inf")
        for _ in range(1 if forward is loop else 3):
            seconds, logits = timed(forward, weights, spec, x, chunk)
            best = min(best, seconds)
        same = "same logits" if torch.equal(logits, expected) else "DIFFERENT logits"
        print(f"  {name:20s} {best * 10_000 / MODELS:7.3f} s  {same}")
    chunk = task._models_per_forward(len(x))
    print(f"ClassifierTask.behaviour uses mlp_forward with {chunk} models per call here")


if __name__ == "__main__":
    main()
