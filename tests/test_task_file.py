"""Task files: their validation, the FileTask's vmapped forward over stacked weights, and the
symmetry derived from a Sequential, tested the way alignment is: a model whose hidden units are
permuted (by hand, here) computes the same outputs and aligns back to distance 0."""

import pytest
import torch
import yaml
from safetensors.torch import save_file
from torch import nn

from wmplat.engine import budget
from wmplat.engine.alignment import align, mlp_permutation_groups
from wmplat.errors import ConfigError
from wmplat.tasks.file import load_task_file
from wmplat.tasks.file.task import permute_units
from wmplat.zoo.params import flatten, num_params, unflatten

CNN = [{"Conv2d": [1, 4, 3, {"padding": 1}]}, {"BatchNorm2d": [4]}, "ReLU", {"MaxPool2d": [2]},
       {"Conv2d": [4, 5, 3]}, {"BatchNorm2d": [5]}, {"Tanh": []}, {"Flatten": []},
       {"Linear": [20, 6]}, {"LayerNorm": [6]}, {"ReLU": []}, {"Linear": [6, 3]}]


def reference_cnn() -> nn.Sequential:
    """The same network as CNN, written in torch directly."""
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(4, 5, 3), nn.BatchNorm2d(5), nn.Tanh(),
                         nn.Flatten(), nn.Linear(20, 6), nn.LayerNorm(6), nn.ReLU(),
                         nn.Linear(6, 3))


def write_task(folder, layers=CNN, shape=(1, 8, 8), classes=3, m=40, **fields):
    """A task file and its data file in `folder`; `fields` replace or add top-level fields."""
    g = torch.Generator().manual_seed(0)
    save_file({"inputs": torch.randn(m, *shape, generator=g),
               "labels": torch.randint(0, classes, (m,), generator=g)}, folder / "test.safetensors")
    doc = {"schema_version": 1, "name": "tiny-cnn", "kind": "classifier",
           "architecture": {"sequential": layers}, "input_shape": list(shape),
           "data": {"file": "test.safetensors"}, "symmetry": "auto", **fields}
    path = folder / "task.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def trained_like(task, n, seed=1) -> torch.Tensor:
    """[n, P] weights with positive running variances, as trained BatchNorms have."""
    g = torch.Generator().manual_seed(seed)
    params = unflatten(0.5 * torch.randn(n, num_params(task.param_spec), generator=g),
                       task.param_spec)
    for name in params:
        if name.endswith("running_var"):
            params[name] = params[name].abs() + 0.5
    return flatten(params, task.param_spec)


def per_model_logits(task, weights) -> torch.Tensor:
    """The reference: a torch module per model, loaded with load_state_dict, in eval mode."""
    x, _ = task.test_data()
    out = []
    for params in (unflatten(w[None], task.param_spec) for w in weights):
        model = reference_cnn()
        model.load_state_dict({k: v[0] for k, v in params.items()}, strict=False)
        with torch.no_grad():
            out.append(model.eval()(x))
    return torch.stack(out)


def test_the_flat_order_is_parameters_then_floating_buffers_without_counters(tmp_path):
    task = load_task_file(write_task(tmp_path))
    state = reference_cnn().state_dict()
    names = [name for name, _ in task.param_spec]
    params = [n for n in state if not n.endswith(("running_mean", "running_var",
                                                   "num_batches_tracked"))]
    buffers = [n for n in state if n.endswith(("running_mean", "running_var"))]
    assert names == params + buffers
    assert all(tuple(state[n].shape) == shape for n, shape in task.param_spec)
    assert task.architecture.endswith(f"({num_params(task.param_spec)} parameters)")


def test_the_vmapped_forward_is_a_loop_over_models_with_load_state_dict(tmp_path):
    task = load_task_file(write_task(tmp_path))
    weights = trained_like(task, 5)
    want = per_model_logits(task, weights)
    with torch.no_grad():
        got = task.forward(unflatten(weights, task.param_spec), task.test_data()[0])
    assert torch.allclose(got, want, rtol=1e-5, atol=1e-6)
    assert torch.equal(task.behaviour(weights), want.argmax(dim=-1))


def test_behaviour_in_blocks_of_models_and_inputs_is_the_same(tmp_path, monkeypatch):
    task = load_task_file(write_task(tmp_path))
    weights = trained_like(task, 7)
    whole = task.behaviour(weights)
    monkeypatch.setattr(budget, "WORKING_SET", 1)   # one model and one input at a time
    assert torch.equal(task.behaviour(weights), whole)


def permuted_by_hand(weights, task, c1, c2, h):
    """Reorder the channels of both convolutions (c1, c2) and the hidden units of the first
    Linear (h), written out layer by layer: after the Flatten each channel of the second
    convolution is a block of 2 * 2 columns of the Linear's weight."""
    p = {k: v.clone() for k, v in unflatten(weights, task.param_spec).items()}
    for name in ("0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var"):
        p[name] = p[name][:, c1]
    p["4.weight"] = p["4.weight"][:, :, c1]
    for name in ("4.weight", "4.bias", "5.weight", "5.bias", "5.running_mean", "5.running_var"):
        p[name] = p[name][:, c2]
    n = len(weights)
    p["8.weight"] = p["8.weight"].reshape(n, 6, 5, 4)[:, :, c2].reshape(n, 6, 20)
    for name in ("8.weight", "8.bias", "9.weight", "9.bias"):
        p[name] = p[name][:, h]
    p["11.weight"] = p["11.weight"][:, :, h]
    return flatten(p, task.param_spec)


def test_auto_symmetry_of_a_cnn_permutes_into_the_same_function_and_aligns_back(tmp_path):
    task = load_task_file(write_task(tmp_path))
    assert [(g.name, g.size) for g in task.permutation_groups] == \
        [("0.out", 4), ("4.out", 5), ("8.out", 6)]
    weights = trained_like(task, 2, seed=3)
    copy = permuted_by_hand(weights[:1], task, torch.tensor([2, 0, 3, 1]),
                            torch.tensor([4, 1, 0, 3, 2]), torch.tensor([5, 3, 1, 0, 2, 4]))
    assert (copy - weights[0]).norm() > 1
    with torch.no_grad():
        same = task.forward(unflatten(torch.cat([weights[:1], copy]), task.param_spec),
                            task.test_data()[0])
    assert torch.allclose(same[0], same[1], rtol=1e-5, atol=1e-6)
    weights, copy = weights.double(), copy.double()
    aligned = align(weights[0], torch.cat([copy, weights[1:]]), task.param_spec,
                    task.permutation_groups)
    assert torch.equal(aligned[0], weights[0])
    assert (aligned[1] - weights[0]).norm() > 1


def test_one_blocked_group_aligns_back_exactly(tmp_path):
    layers = [{"Conv1d": [2, 3, 3]}, "ReLU", "Flatten", {"Linear": [18, 4]}]
    task = load_task_file(write_task(tmp_path, layers, shape=(2, 8), classes=4))
    (group,) = task.permutation_groups
    assert group.axes == (("0.weight", 0), ("0.bias", 0), ("3.weight", 1, 6))
    w = trained_like(task, 1, seed=4).double()
    p = {k: v.clone() for k, v in unflatten(w, task.param_spec).items()}
    perm = torch.tensor([2, 0, 1])
    p["0.weight"], p["0.bias"] = p["0.weight"][:, perm], p["0.bias"][:, perm]
    p["3.weight"] = p["3.weight"].reshape(1, 4, 3, 6)[:, :, perm].reshape(1, 4, 18)
    copy = flatten(p, task.param_spec)
    assert torch.equal(align(w[0], copy, task.param_spec, task.permutation_groups)[0], w[0])


def test_auto_symmetry_of_an_mlp_is_the_mlp_s(tmp_path):
    layers = [{"Linear": [6, 5]}, "ReLU", {"Linear": [5, 4]}, "GELU", {"Linear": [4, 3]}]
    task = load_task_file(write_task(tmp_path, layers, shape=(6,)))
    want = mlp_permutation_groups((6, 5, 4, 3))
    assert [(g.size, g.axes) for g in task.permutation_groups] == \
        [(g.size, tuple((n.replace("fc1", "0").replace("fc2", "2").replace("fc3", "4"), a)
                        for n, a in g.axes)) for g in want]


@pytest.mark.parametrize("layers, shape, sizes", [
    (CNN, (1, 8, 8), [4, 5, 6]),
    ([{"Conv1d": [2, 4, 3]}, {"LayerNorm": [6]}, "SiLU", {"Conv1d": [4, 3, 3, {"bias": False}]},
      {"BatchNorm1d": [3]}, "ELU", {"AdaptiveMaxPool1d": [2]}, "Flatten", {"Dropout": [0.5]},
      {"BatchNorm1d": [6]}, {"Linear": [6, 3]}], (2, 8), [4, 3]),
    ([{"Conv2d": [1, 3, 3]}, {"LayerNorm": [[3, 6, 6]]}, "Flatten", {"LayerNorm": [108]},
      {"Linear": [108, 5]}, {"LayerNorm": [5, {"elementwise_affine": False}]}, "Sigmoid",
      {"Linear": [5, 3]}], (1, 8, 8), [3, 5]),
    # a Linear on [batch, 2, 8] makes units on the last axis: missed, never wrongly declared
    ([{"Linear": [8, 4]}, "ReLU", "Flatten", {"Linear": [8, 3]}], (2, 8), []),
])
def test_every_derived_group_reorders_units_into_the_same_function(tmp_path, layers, shape,
                                                                   sizes):
    task = load_task_file(write_task(tmp_path, layers, shape=shape))
    assert [g.size for g in task.permutation_groups] == sizes
    weights = trained_like(task, 1, seed=5)
    x = task.test_data()[0]
    g = torch.Generator().manual_seed(6)
    with torch.no_grad():
        want = task.forward(unflatten(weights, task.param_spec), x)
        for group in task.permutation_groups:
            perm = torch.randperm(group.size, generator=g)
            moved = permute_units(weights, task.param_spec, group, perm)
            assert (moved - weights).norm() > 0.1
            got = task.forward(unflatten(moved, task.param_spec), x)
            assert torch.allclose(got, want, rtol=1e-5, atol=1e-5), group.name


def test_a_layer_that_mixes_units_ends_the_symmetry_through_it(tmp_path):
    layers = [{"Conv2d": [1, 4, 3]}, {"GroupNorm": [2, 4]}, "ReLU", {"Conv2d": [4, 4, 3]},
              "ReLU", {"AdaptiveAvgPool2d": [1]}, "Flatten", {"Linear": [4, 3]}]
    task = load_task_file(write_task(tmp_path, layers))
    assert [g.name for g in task.permutation_groups] == ["3.out"]
    assert load_task_file(write_task(tmp_path, symmetry="none")).permutation_groups == []


def test_a_factory_has_no_symmetry_unless_it_declares_groups(tmp_path, monkeypatch):
    (tmp_path / "tinynets.py").write_text(
        "from torch import nn\n"
        "def mlp(width):\n"
        "    return nn.Sequential(nn.Linear(6, width), nn.ReLU(), nn.Linear(width, 3))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    factory = {"factory": "tinynets:mlp", "kwargs": {"width": 5}}
    task = load_task_file(write_task(tmp_path, shape=(6,), architecture=factory))
    assert task.permutation_groups == [] and "factory tinynets:mlp(width=5)" in task.architecture
    declared = [{"name": "hidden", "size": 5,
                 "axes": [["0.weight", 0], ["0.bias", 0], ["2.weight", 1]]}]
    task = load_task_file(write_task(tmp_path, shape=(6,), architecture=factory,
                                     symmetry=declared))
    assert task.permutation_groups[0].axes == (("0.weight", 0), ("0.bias", 0), ("2.weight", 1))
    wrong = [{**declared[0], "axes": [["0.weight", 0], ["2.weight", 1]]}]
    with pytest.raises(ConfigError, match=r"task.yaml: symmetry.0 \('hidden'\): reordering"):
        load_task_file(write_task(tmp_path, shape=(6,), architecture=factory,
                                  symmetry=wrong))


# --- bad task files: one line naming the file and the field ----------------------------------

def bad(tmp_path, **fields):
    with pytest.raises(ConfigError) as err:
        load_task_file(write_task(tmp_path, **fields))
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(tmp_path / "task.yaml"))
    return message


@pytest.mark.parametrize("fields, says", [
    ({"layers": [{"Conv2d": [1, 4, 3]}, {"Exec": ["import os"]}]},
     "architecture.sequential.1: Value error, unknown layer 'Exec'"),
    ({"layers": [{"Linear": [64]}]}, "architecture.sequential.0 (Linear): TypeError"),
    ({"layers": [{"Linear": [64, 10, {"dtype": "float64"}]}]},
     "architecture.sequential.0: Value error, Linear: `dtype` is not for a task file"),
    ({"layers": [{"Linear": [10, 3]}]}, "architecture.sequential.0 (Linear) does not accept its "
                                        "input of shape [1, 1, 8, 8]"),
    ({"input_shape": [1, -8, 8]}, "input_shape.1: Input should be greater than 0"),
    ({"kind": "neural-field"}, "kind: Input should be 'classifier'"),
    ({"name": "../up"}, "name: Value error, '../up' is not a valid name"),
    ({"colour": "red"}, "colour: Extra inputs are not permitted"),
    ({"symmetry": "some"}, "symmetry.word: Input should be 'auto' or 'none'"),
    ({"architecture": {"factory": "no_such_package_here.nets:make", "kwargs": {}}},
     "architecture.factory 'no_such_package_here.nets:make': cannot import "
     "'no_such_package_here.nets' (ModuleNotFoundError"),
    ({"architecture": {"factory": "os.path"}}, "architecture.factory: Value error, 'os.path' is "
                                               "not an import path"),
    ({"architecture": {"sequential": ["ReLU"], "factory": "a:b"}}, "give exactly one of"),
    ({"data": {"file": "../test.safetensors"}}, "data.file: Value error, '../test.safetensors' "
                                                "must be a path inside the task file's folder"),
    # the zoo's manifest lists the data file under this path, so the manifest's rule applies
    ({"data": {"file": "my data.safetensors"}}, "data.file: Value error, 'my data.safetensors' "
                                                "must be a path inside the task file's folder"),
    ({"data": {"file": "missing.safetensors"}}, "data.file 'missing.safetensors': no such file"),
    ({"data": {"datasets": {"path": "a/b", "revision": "main", "input": "x", "label": "y"}}},
     "data.datasets.revision: Value error, 'main' is not a full commit"),
    ({"data": {"datasets": {"path": "a/b", "revision": "0" * 40, "input": "x", "label": "y",
                            "transform": ["rotate:90"]}}}, "unknown transform 'rotate:90'"),
    ({"schema_version": 2}, "schema_version 2 is newer than this wmplat reads"),
])
def test_a_bad_field_is_one_line_naming_it(tmp_path, fields, says):
    assert says in bad(tmp_path, **fields)


def test_data_whose_labels_do_not_match_its_inputs_is_refused(tmp_path):
    path = write_task(tmp_path)
    save_file({"inputs": torch.randn(5, 1, 8, 8), "labels": torch.zeros(4, dtype=torch.long)},
              tmp_path / "test.safetensors")
    with pytest.raises(ConfigError, match=r"labels have shape \[4\], expected \[5\]"):
        load_task_file(path)
    save_file({"inputs": torch.randn(5, 1, 8, 8), "labels": torch.full((5,), 3)},
              tmp_path / "test.safetensors")
    with pytest.raises(ConfigError, match=r"labels range over 3..3, but the model outputs 3"):
        load_task_file(path)
    save_file({"inputs": torch.randn(5, 8, 8), "labels": torch.zeros(5, dtype=torch.long)},
              tmp_path / "test.safetensors")
    with pytest.raises(ConfigError, match=r"shape \[5, 8, 8\], expected \[m, 1, 8, 8\]"):
        load_task_file(path)


def test_a_data_file_linked_from_outside_the_folder_is_refused(tmp_path):
    inside = tmp_path / "task"
    inside.mkdir()
    path = write_task(inside)
    (inside / "test.safetensors").rename(tmp_path / "elsewhere.safetensors")
    (inside / "test.safetensors").symlink_to(tmp_path / "elsewhere.safetensors")
    with pytest.raises(ConfigError, match="leads outside the task file's folder"):
        load_task_file(path)
