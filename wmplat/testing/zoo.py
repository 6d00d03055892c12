"""Tiny zoos for tests: real zoo folders, written and loaded as wmplat writes and loads them.

`tiny_zoo` draws runs of checkpoints for any architecture: each run has a centre, drawn at the
scale of torch.nn's default initialisation, and its checkpoints move along a direction of their
own with a little jitter, like the iterates of one training run. Parameters named in `frozen`
take one value in every model (the part of a network p-diff leaves untouched). Quality comes
from the task itself, through `behaviour` and `quality`.

For a bare param spec the kit supplies `SpecTask`, a real classifier over any architecture: a
fixed random projection turns a model's flat weights into a linear classifier of seeded points,
so behaviour, quality and similarity are wmplat's own `ClassifierTask` code on real predictions.
"""

import tempfile
from collections.abc import Sequence
from math import prod
from pathlib import Path

import torch

from ..errors import ConfigError
from ..method import random_generator
from ..metric import BehaviourCache, EvalContext
from ..task import BuiltZoo, ClassifierTask, Task
from ..zoo.format import Zoo, load_zoo, write_zoo
from ..zoo.params import ParamSpec, normalize_spec, num_params
from ..zoo.train_view import TrainZoo

DEFAULT_SPEC: ParamSpec = [("fc1.weight", (8, 6)), ("fc1.bias", (8,)),
                           ("fc2.weight", (3, 8)), ("fc2.bias", (3,))]


class SpecTask(ClassifierTask):
    """A classifier for any param spec: model w labels point x by argmax_c x . (A w)[:, c],
    where A is a fixed seeded projection [dims * classes, num_params]; the test set is seeded
    points labelled by a seeded teacher. Nearby weights give nearby predictions, so
    similarity means what it means for a trained network."""

    name = "tiny-spec"
    description = "the test kit's classifier over any param spec (wmplat.testing)"
    architecture = "any: a fixed random projection of the weights to a linear classifier"
    license = "CC0-1.0"
    behaviour_chunk = 64
    DIMS, CLASSES, POINTS = 6, 3, 90

    def __init__(self, spec: Sequence[tuple[str, Sequence[int]]] = DEFAULT_SPEC, seed: int = 0):
        self._spec = normalize_spec(spec)
        if not self._spec or num_params(self._spec) == 0:
            raise ConfigError(f"param spec {spec!r} has no parameters; give (name, shape) "
                              "pairs such as [('fc1.weight', (8, 6)), ('fc1.bias', (8,))]")
        g = random_generator(seed)
        size = num_params(self._spec)
        self._projection = torch.randn(self.DIMS * self.CLASSES, size, generator=g) / size ** 0.5
        x = torch.randn(self.POINTS, self.DIMS, generator=g)
        teacher = torch.randn(self.DIMS, self.CLASSES, generator=g)
        self._test = (x, (x @ teacher).argmax(dim=1))

    @property
    def param_spec(self) -> ParamSpec:
        return list(self._spec)

    def test_data(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self._test

    def forward(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        n = params[self._spec[0][0]].shape[0]
        flat = torch.cat([params[name].reshape(n, -1) for name, _ in self._spec], dim=1)
        classifiers = (flat @ self._projection.T).reshape(n, self.DIMS, self.CLASSES)
        return torch.einsum("md,ndc->nmc", x, classifiers)


def tiny_zoo(architecture: Task | type[Task] | Sequence[tuple[str, Sequence[int]]] | None = None,
             folder: Path | str | None = None, *, runs: int = 4, heldout: int = 2,
             checkpoints: int = 3, seed: int = 0, frozen: Sequence[str] = (),
             drift: float = 0.5, jitter: float = 0.01, name: str = "tiny") -> Zoo:
    """A zoo of `runs` train runs and `heldout` heldout runs of `checkpoints` checkpoints each,
    written to `folder` in the zoo format and loaded back (verified) as a `wmplat.Zoo`.

    `architecture` is a task (instance or class) or a param spec, a list of (name, shape)
    pairs, run by `SpecTask`; None is a small MLP-shaped spec. Without `folder` the files go to
    a temporary folder, removed once the zoo is loaded (a zoo lives in memory). The same
    arguments give the same files. `drift` is how far a run moves from its first checkpoint to
    its last, `jitter` the noise of each checkpoint, both in units of each parameter's scale.
    A task with `model_metadata` fills each record's `metadata` with its values.
    """
    task = _task(architecture)
    _check_counts(runs=runs, heldout=heldout, checkpoints=checkpoints)
    spec = normalize_spec(task.param_spec)
    unknown = sorted(set(frozen) - {n for n, _ in spec})
    if unknown:
        raise ConfigError(f"frozen names {unknown} are not parameters of task {task.name!r}; "
                          f"it has {[n for n, _ in spec]}")
    built = _draw(task, spec, runs, heldout, checkpoints, seed, set(frozen), drift, jitter)
    if folder is not None:
        return _write_and_load(Path(folder), name, task, built)
    with tempfile.TemporaryDirectory(prefix="wmplat-tiny-zoo-") as tmp:
        zoo = _write_and_load(Path(tmp), name, task, built)
    zoo.folder = None
    return zoo


def method_view(zoo: Zoo) -> TrainZoo:
    """Exactly what `Method.fit` receives from the runner: `zoo.without_heldout()`."""
    return zoo.without_heldout()


def metric_context(samples: torch.Tensor, zoo: Zoo) -> EvalContext:
    """What `Metric.compute` receives from the runner for a method's `samples` [n, num_params]
    on `zoo` (both splits visible, behaviour computed once)."""
    return EvalContext(samples.float().contiguous(), zoo, BehaviourCache(zoo))


def _task(architecture) -> Task:
    if architecture is None:
        return SpecTask()
    if isinstance(architecture, type) and issubclass(architecture, Task):
        return architecture()
    if isinstance(architecture, Task):
        return architecture
    if isinstance(architecture, str | bytes):
        raise ConfigError(f"tiny_zoo takes a task or a param spec, got the string "
                          f"{architecture!r}; give the task's class or an instance of it")
    return SpecTask(architecture)


def _check_counts(**counts: int) -> None:
    for key, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"tiny_zoo: {key} must be a positive integer, got {value!r}")


def _scale(shape: tuple[int, ...]) -> float:
    """torch.nn's default bound, 1/sqrt(fan_in), taking the axes after the first as fan-in;
    1 for vectors and scalars."""
    return prod(shape[1:]) ** -0.5 if len(shape) >= 2 else 1.0


def _draw(task: Task, spec: ParamSpec, runs: int, heldout: int, checkpoints: int, seed: int,
          frozen: set[str], drift: float, jitter: float) -> BuiltZoo:
    fixed = random_generator(seed)
    shared = {n: _uniform(s, fixed) for n, s in spec if n in frozen}
    rows, models = [], []
    for run in range(runs + heldout):
        run_seed = seed * 1_000_003 + run
        g = random_generator(run_seed)
        centre = {n: _uniform(s, g) for n, s in spec}
        direction = {n: torch.randn(s, generator=g) * _scale(s) for n, s in spec}
        for k in range(checkpoints):
            t = (k + 1) / checkpoints
            parts = [shared[n] if n in frozen else
                     centre[n] + drift * t * direction[n]
                     + jitter * _scale(s) * torch.randn(s, generator=g)
                     for n, s in spec]
            rows.append(torch.cat([p.reshape(-1) for p in parts]))
            models.append({"id": f"run{run:03d}-step{k + 1}", "run": run, "step": k + 1,
                           "seed": run_seed, "split": "train" if run < runs else "heldout",
                           "quality": 0.0})
    weights = torch.stack(rows)
    for model, quality in zip(models, task.quality(task.behaviour(weights)), strict=True):
        model["quality"] = round(float(quality), 6)
    for name, values in task.model_metadata(weights).items():
        for model, value in zip(models, values.tolist(), strict=True):
            model.setdefault("metadata", {})[name] = value
    recipe = {"kind": "wmplat.testing.tiny_zoo", "runs": runs, "heldout": heldout,
              "checkpoints": checkpoints, "frozen": sorted(frozen), "drift": drift,
              "jitter": jitter, "seed": seed}
    return BuiltZoo(weights=weights, models=models, provenance={"recipe": recipe})


def _uniform(shape: tuple[int, ...], g: torch.Generator) -> torch.Tensor:
    return (torch.rand(shape, generator=g) * 2 - 1) * _scale(shape)


def _write_and_load(folder: Path, name: str, task: Task, built: BuiltZoo) -> Zoo:
    if folder.exists() and any(folder.iterdir()):
        raise ConfigError(f"tiny_zoo: {folder} is not empty; give a new folder (such as "
                          "tmp_path / 'zoo') or none for a temporary one")
    folder.mkdir(parents=True, exist_ok=True)
    write_zoo(folder, name, task, built)
    return load_zoo(folder, task)
