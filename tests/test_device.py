"""`--device`: resolving it, passing it to metrics, tasks and methods, and recording it.

This machine has no GPU and a CPU-only torch, so nothing here computes on one. What the tests
check: every choice and bad input of `resolve_device`; that `--device cpu` and `--device auto`
(which resolves to the CPU here) give the default's values bit for bit; that `--device cuda`
fails in one line before anything is written; that the device reaches methods and is recorded.
The `meta` device (shapes without values, on every torch) stands in where a test needs a device
other than the CPU: it shows the device is passed on, never that a GPU computes right.
"""

import json

import pytest
import torch
from conftest import Cli
from inprocess import as_plugin
from safetensors.torch import load_file

import wmplat
from wmplat.engine.device import resolve_device
from wmplat.errors import ConfigError, PluginError
from wmplat.evaluation.runner import Job, generate
from wmplat.metric import BehaviourCache, EvalContext
from wmplat.metrics._device import device_for
from wmplat.plugins import load_plugins, registered
from wmplat.schema import Result
from wmplat.tasks.digits_mlp import DigitsMLP
from wmplat.testing import SpecTask, tiny_zoo

META = torch.device("meta")


def test_cpu_resolves_to_the_cpu():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize("name", ["cuda", "cuda:0", "cuda:1"])
def test_cuda_on_a_torch_without_cuda_is_a_one_line_error(name):
    assert torch.version.cuda is None, "these tests expect the CPU build of torch"
    with pytest.raises(ConfigError) as error:
        resolve_device(name)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"--device {name}: this torch ({torch.__version__}) has no CUDA")
    assert "--device cpu" in message and "auto" in message


@pytest.mark.parametrize("name", ["", "gpu", "CPU", "Cuda", "cuda:", "cuda:x", "cuda:-1",
                                  "cuda:0:1", "cpu:0", "mps", " cpu", 0, None])
def test_anything_else_is_a_one_line_error_listing_the_choices(name):
    with pytest.raises(ConfigError) as error:
        resolve_device(name)
    message = str(error.value)
    assert "\n" not in message
    assert message == ("--device must be one of cpu, cuda, cuda:N (a GPU's index) or auto "
                       f"(cuda if a GPU is visible, else cpu); got {name!r}")


def test_auto_takes_the_cpu_here_and_says_so(capsys):
    assert resolve_device("auto") == torch.device("cpu")
    assert "--device auto: computing on cpu (no GPU visible)" in capsys.readouterr().err


def test_auto_takes_the_first_gpu_where_torch_sees_one(monkeypatch):
    # the choice alone: nothing is computed on the device it names
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda", 0)


def test_cuda_where_torch_has_cuda_but_sees_no_gpu_says_so(monkeypatch):
    # the message alone: nothing is computed
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match=r"^--device cuda: no GPU visible \(torch.cuda"):
        resolve_device("cuda")


def test_a_gpu_index_beyond_those_visible_is_refused(monkeypatch):
    # the message alone: nothing is computed
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(ConfigError, match=r"^--device cuda:2: 2 GPU\(s\) visible, cuda:0 to "
                                          r"cuda:1; pick one of them$"):
        resolve_device("cuda:2")


class DeviceProbe(wmplat.Method):
    """Copies training checkpoints, and keeps the device the runner set before `fit`."""

    name = "device-probe"
    seen: list = []

    def fit(self, zoo, seed):
        DeviceProbe.seen.append(vars(self).get("device"))
        self.weights = zoo.train_weights()

    def sample(self, n, seed):
        g = wmplat.random_generator(seed)
        return self.weights[torch.randint(len(self.weights), (n,), generator=g)]


PROBE = as_plugin("register_methods", DeviceProbe)


def stored(results):
    """{result path relative to `results`: (row, per-sample tensors)}."""
    return {str(path.relative_to(results)): (json.loads(path.read_text()),
                                            load_file(path.parent / "per_sample.safetensors"))
            for path in sorted(results.rglob("result.json"))}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, default_zoo):
    """The probe evaluated without --device, with --device cpu, then with --device auto into
    the second folder (a new seed: the seeded rows are computed, the references reused)."""
    DeviceProbe.seen.clear()
    folder = tmp_path_factory.mktemp("device")
    (folder / "default").mkdir()
    (folder / "cpu").mkdir()
    args = ("evaluate", "--method", "device-probe", "--samples", "4", "--seed", "1")
    with registered(PROBE):
        Cli(folder / "default")(*args)
        Cli(folder / "cpu")(*args, "--device", "cpu")
        before = stored(folder / "cpu" / "wmplat-results")
        auto = Cli(folder / "cpu")(*args[:-1], "2", "--device", "auto")
    return {"default": stored(folder / "default" / "wmplat-results"), "cpu": before,
            "auto": stored(folder / "cpu" / "wmplat-results"), "auto_proc": auto,
            "seen": list(DeviceProbe.seen)}


def test_device_cpu_gives_the_defaults_values_bit_for_bit(runs):
    default, cpu = runs["default"], runs["cpu"]
    assert set(default) == set(cpu) and len(default) == 10
    for path, (row, per_sample) in default.items():
        other_row, other_per_sample = cpu[path]
        assert other_row["metrics"] == row["metrics"], path
        assert other_row["verdict"] == row["verdict"], path
        assert set(other_per_sample) == set(per_sample)
        for name, values in per_sample.items():
            assert torch.equal(other_per_sample[name], values), (path, name)


def test_rows_record_the_device_they_were_computed_on(runs):
    for name in ("default", "cpu", "auto"):
        assert {row["environment"]["device"] for row, _ in runs[name].values()} == {"cpu"}


def test_auto_resolves_to_the_cpu_here_says_so_and_reuses_cpu_rows(runs):
    proc = runs["auto_proc"]
    assert "--device auto: computing on cpu (no GPU visible)" in proc.stderr
    # the device is no part of a row's identity: the references computed with --device cpu
    # are reused, the seed-2 rows computed and stored beside the seed-1 rows
    assert proc.stderr.count("reusing ") == 2
    assert set(runs["auto"]) > set(runs["cpu"])
    assert any("-seed2-" in path for path in runs["auto"])


def test_a_method_is_told_the_device_before_fit(runs):
    assert runs["seen"] == [torch.device("cpu")] * 3


def test_the_runner_passes_its_device_to_the_method(default_zoo):
    DeviceProbe.seen.clear()
    with registered(PROBE):
        entry = load_plugins().generators.get("device-probe")
        generate(Job("device-probe", "method", {}, entry), tiny_zoo(), 3, 0, META)
    assert DeviceProbe.seen == [META]
    assert wmplat.Method.device == torch.device("cpu")


def test_device_cuda_fails_in_one_line_and_writes_nothing(tmp_path, default_zoo):
    proc = Cli(tmp_path)("evaluate", "--method", "noise", "--samples", "4", "--device", "cuda",
                         ok=False)
    assert proc.returncode == 1
    assert proc.stderr == (f"error: --device cuda: this torch ({torch.__version__}) has no "
                           "CUDA; use --device cpu, or auto to take a GPU only where there is "
                           "one\n")
    assert list(tmp_path.iterdir()) == []


def test_a_bad_device_name_fails_in_one_line(tmp_path, default_zoo):
    proc = Cli(tmp_path)("evaluate", "--method", "noise", "--device", "gpu", ok=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: --device must be one of cpu, cuda, cuda:N")
    assert proc.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_a_row_without_a_recorded_device_reads_and_dumps_as_before(runs):
    row, _ = next(iter(runs["cpu"].values()))
    del row["environment"]["device"]
    old = json.dumps(row, indent=2)
    result = Result.model_validate_json(old)
    assert result.environment.device is None
    assert result.model_dump_json(indent=2) == old


def test_the_digits_forward_runs_where_the_weights_are(default_zoo):
    task = DigitsMLP()
    weights = torch.zeros(3, sum(torch.Size(s).numel() for _, s in task.param_spec),
                          device=META)
    behaviour = task.behaviour(weights)
    assert (behaviour.device, behaviour.shape) == (META, (3, 500))
    assert task.errors(behaviour).device == META
    assert task.test_data_on(META) is task.test_data_on(META)      # copied once per device
    x, y = task.test_data_on(torch.device("cpu"))
    assert x is task.test_data()[0] and y is task.test_data()[1]


class CpuOnlyTask(SpecTask):
    """A task written for CPU tensors only, as a third party may write one."""

    name = "cpu-only"

    def behaviour(self, weights):
        return super().behaviour(torch.from_numpy(weights.numpy()))


def test_a_task_that_cannot_take_device_weights_is_named_with_the_way_out():
    zoo = tiny_zoo(CpuOnlyTask())
    assert BehaviourCache(zoo).get("train").shape == (12, SpecTask.POINTS)
    with pytest.raises(PluginError) as error:
        BehaviourCache(zoo, META).get("train")
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("task 'cpu-only' failed in behaviour() with weights on meta (")
    assert message.endswith("a task that computes on the CPU only needs --device cpu")


class OwnSimilarityTask(SpecTask):
    """A classifier with a similarity of its own, which may be written for the CPU only."""

    name = "own-similarity"

    def similarity(self, a, b):
        return super().similarity(a, b)


def test_built_in_metrics_hand_the_device_only_to_wmplats_own_task_code():
    def context(task):
        zoo = tiny_zoo(task)
        return EvalContext(zoo.train_weights()[:2], zoo, BehaviourCache(zoo, META))

    assert device_for(context(SpecTask()), "similarity", "errors") == META
    assert device_for(context(OwnSimilarityTask()), "similarity", "errors") == torch.device("cpu")
    assert device_for(context(OwnSimilarityTask()), "errors") == META
