"""`wmplat zoo import --format smallcnnzoo` on a synthetic copy of Unterthiner et al.'s layout:
a small CNN's state dicts written in TensorFlow's axis order as rows of weights.npy, with
layout.csv and metrics.csv.gz; the import must give back torch's tensors exactly, and the test
accuracy recorded (computed here with the plain torch module) must match the recomputed one."""

import csv
import gzip

import numpy as np
import pytest
import test_zoo_import
import torch
import yaml
from safetensors.torch import save_file
from torch import nn

from wmplat.tasks.digits_mlp import DigitsMLP
from wmplat.zoo.format import load_zoo

RUNS, STEPS = 6, (0, 100)


# this module's own $WMPLAT_HOME, autouse: its imported zoos are listed by no other test
import_home = test_zoo_import.import_home


def model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, 10)).eval()


def to_tf(tensor: torch.Tensor) -> torch.Tensor:
    if tensor.ndim == 4:
        return tensor.permute(2, 3, 1, 0)        # (out, in, kh, kw) -> (kh, kw, in, out)
    return tensor.T if tensor.ndim == 2 else tensor


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return write_smallcnnzoo(tmp_path_factory.mktemp("smallcnnzoo"),
                             tmp_path_factory.mktemp("task"))


def write_smallcnnzoo(root, task):
    """The zoo folder `root`, and the task file cnn.yaml with its data in `task`."""
    x, y = DigitsMLP().test_data()
    x = x.reshape(-1, 1, 8, 8)
    save_file({"inputs": x, "labels": y}, task / "digits-test.safetensors")
    (task / "cnn.yaml").write_text(yaml.safe_dump({
        "schema_version": 1, "name": "digits-cnn", "kind": "classifier",
        "architecture": {"sequential": [{"Conv2d": [1, 4, 3]}, {"ReLU": []}, {"Flatten": []},
                                        {"Linear": [144, 10]}]},
        "input_shape": [1, 8, 8], "data": {"file": "digits-test.safetensors"},
        "symmetry": "auto"}))
    rows, metrics, states = [], [], []
    for run in range(RUNS):
        for step in STEPS:
            net = model(1000 * run + step)
            state = net.state_dict()
            states.append(state)
            rows.append(torch.cat([to_tf(v).reshape(-1) for k, v in state.items()]))
            with torch.no_grad():
                accuracy = float((net(x).argmax(1) == y).float().mean())
            metrics.append({"modeldir": f"run_{run:03d}", "step": step,
                            "test_accuracy": accuracy, "config.random_seed": 7 + run})
    np.save(root / "weights.npy", torch.stack(rows).numpy())
    with gzip.open(root / "metrics.csv.gz", "wt", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(metrics[0]))
        writer.writeheader()
        writer.writerows(metrics)
    with open(root / "layout.csv", "w", newline="") as f:
        f.write("varname,start_idx,end_idx,shape\n")
        start = 0
        for tf_name, (_, v) in zip(["conv2d/kernel:0", "conv2d/bias:0", "dense/kernel:0",
                                    "dense/bias:0"], states[0].items(), strict=True):
            shape = tuple(to_tf(v).shape)
            f.write(f'{tf_name},{start},{start + v.numel()},"{shape}"\n')
            start += v.numel()
    return root, task / "cnn.yaml", states


def test_tf_order_comes_back_as_torch_tensors_with_the_same_accuracy(source, cli, import_home):
    root, task, states = source
    proc = cli("zoo", "import", str(root), "--format", "smallcnnzoo", "--task", str(task),
               "--name", "digits-smallcnn", "--heldout-runs", "4,5")
    assert "beyond one test example" in proc.stderr and "0 beyond" in proc.stderr
    zoo = load_zoo(import_home / "zoos" / "digits-smallcnn")
    models = zoo.train_models() + zoo.heldout_models()
    weights = torch.cat([zoo.train_weights(), zoo.heldout_weights()])
    params = zoo.unflatten(weights)
    for i, m in enumerate(models):
        state = states[m.run * len(STEPS) + STEPS.index(m.step)]
        for name in ("0.weight", "0.bias", "3.weight", "3.bias"):
            assert torch.equal(params[name][i], state[name])
        assert m.seed == 7 + m.run
    assert zoo.manifest.provenance["quality_check"] == {
        "compared": 12, "beyond_one_example": 0, "max_difference": pytest.approx(0, abs=1e-6)}


def test_a_layout_that_does_not_fit_the_task_is_one_line(source, cli, import_home, tmp_path):
    root, task, _ = source
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("weights.npy", "metrics.csv.gz"):
        (bad / name).write_bytes((root / name).read_bytes())
    lines = (root / "layout.csv").read_text().splitlines()
    (bad / "layout.csv").write_text("\n".join(lines[:-1]) + "\n")
    proc = cli("zoo", "import", str(bad), "--format", "smallcnnzoo", "--task", str(task),
               "--name", "bad-smallcnn", "--heldout-runs", "4,5", ok=False)
    assert proc.stderr.strip().splitlines() == [
        f"error: {bad / 'layout.csv'}: 3 variables, the task has 4 parameters (0.weight, "
        "0.bias, 3.weight, 3.bias); fix the task file's architecture"]
    assert not (import_home / "zoos" / "bad-smallcnn").exists()
