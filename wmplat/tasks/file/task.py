"""`FileTask`: the classifier a task file describes, evaluated over stacked weights.

The flat weight vector holds the module's parameters, then its floating buffers (BatchNorm
running statistics), each in state-dict order; integer buffers (`num_batches_tracked`) are left
out. Behaviour runs the module in eval mode with `torch.func.functional_call`, vmapped over the
model dimension, a block of models and of inputs at a time within the memory budget.
"""

from math import prod
from pathlib import Path

import torch
from torch import nn
from torch.func import functional_call, vmap

from ...engine.alignment import PermutationGroup, check_groups, expand_blocks
from ...engine.budget import blocks, step_size
from ...errors import ConfigError
from ...task import ClassifierTask
from ...zoo.params import ParamSpec, num_params, unflatten
from .data import check_data, load_datasets_data, load_file_data
from .layers import build_factory, build_sequential, trace_shapes
from .schema import TaskFile, read_task_file
from .symmetry import sequential_groups

SYMMETRY_CHECK_SEED = 0


def load_task_file(path: Path, load_data: bool = True, within: Path | None = None
                   ) -> "FileTask":
    """The task a task file describes; with `load_data`, its test data is loaded and checked
    now rather than on first use. Its data file must lead (through any links) inside `within`,
    by default the task file's folder."""
    task = FileTask(read_task_file(path), path, within)
    if load_data:
        task.test_data()
    return task


class FileTask(ClassifierTask):
    """A classifier described by a task file rather than by a Python task plugin."""

    name = "module"   # each instance takes its task file's name

    def __init__(self, spec: TaskFile, path: Path, within: Path | None = None):
        self.spec, self.path = spec, path
        self.within = within or path.parent
        self._data: tuple[torch.Tensor, torch.Tensor] | None = None
        self.source = str(path)
        self.name = spec.name
        self.description = spec.description
        self.license = spec.license
        self.baseline_settings = spec.baselines or {}
        self.module = self._build().eval()
        shapes = trace_shapes(self.module, spec.input_shape, self.source)
        self.classes = self._classes(shapes[-1])
        self._spec = self._param_spec()
        self._pair_bytes = 4 * (prod(spec.input_shape) + _activations(self.module,
                                                                        spec.input_shape))
        self._groups = self._symmetry(shapes)
        self.architecture = f"{self._summary()} ({num_params(self._spec):,} parameters)"

    def _build(self) -> nn.Module:
        arch = self.spec.architecture
        if arch.sequential is not None:
            return build_sequential(arch.sequential, self.source)
        return build_factory(arch.factory, arch.kwargs or {}, self.source)

    def _classes(self, out_shape) -> int:
        if len(out_shape) != 2:
            raise ConfigError(f"{self.source}: the model's output for one input has shape "
                              f"{list(out_shape)}; a classifier outputs [batch, classes]")
        return int(out_shape[1])

    def _param_spec(self) -> ParamSpec:
        state = self.module.state_dict(keep_vars=True)
        params = {n for n, _ in self.module.named_parameters(remove_duplicate=False)}
        spec = [(n, tuple(t.shape)) for n, t in state.items() if n in params]
        spec += [(n, tuple(t.shape)) for n, t in state.items()
                 if n not in params and t.is_floating_point()]
        if not spec:
            raise ConfigError(f"{self.source}: the architecture has no parameters")
        return spec

    def _symmetry(self, shapes) -> list[PermutationGroup]:
        symmetry = self.spec.symmetry
        if symmetry == "none":
            return []
        if symmetry == "auto":
            if self.spec.architecture.sequential is None:
                return []   # a factory's module is opaque: it declares its groups or has none
            return sequential_groups(self.module, self.spec.input_shape, shapes,
                                     {n for n, _ in self._spec})
        groups = [PermutationGroup(g.name, g.size, tuple(tuple(a) for a in g.axes))
                  for g in symmetry]
        try:
            check_groups(groups, self._spec)
        except ValueError as exc:
            raise ConfigError(f"{self.source}: symmetry: {exc}") from None
        self._check_symmetry(groups)
        return groups

    def _check_symmetry(self, groups: list[PermutationGroup]) -> None:
        """Each declared group permutes a random model into one with the same outputs."""
        g = torch.Generator().manual_seed(SYMMETRY_CHECK_SEED)
        weights = torch.randn(1, num_params(self._spec), generator=g).abs_().add_(0.5)
        x = torch.randn(4, *self.spec.input_shape, generator=g)
        with torch.no_grad():
            want = self.forward(unflatten(weights, self._spec), x)
            for k, group in enumerate(groups):
                perm = torch.randperm(group.size, generator=g)
                moved = permute_units(weights, self._spec, group, perm)
                got = self.forward(unflatten(moved, self._spec), x)
                if not torch.allclose(got, want, rtol=1e-4, atol=1e-5 * float(want.abs().max())):
                    raise ConfigError(f"{self.source}: symmetry.{k} ({group.name!r}): "
                                      "reordering its units changes the model's outputs, so it "
                                      "is not a symmetry of the architecture; fix its axes, "
                                      "or write symmetry: none")

    def _summary(self) -> str:
        arch = self.spec.architecture
        if arch.sequential is None:
            kwargs = ", ".join(f"{k}={v!r}" for k, v in (arch.kwargs or {}).items())
            return f"factory {arch.factory}({kwargs})"
        return " ".join(_layer_summary(layer) for layer in arch.sequential)

    @property
    def param_spec(self) -> ParamSpec:
        return list(self._spec)

    @property
    def permutation_groups(self) -> list[PermutationGroup]:
        return list(self._groups)

    def test_data(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, labels), loaded and checked on first use."""
        if self._data is None:
            self._data = self._load_data()
        return self._data

    def _load_data(self) -> tuple[torch.Tensor, torch.Tensor]:
        data = self.spec.data
        if data.file is not None:
            inputs, labels = load_file_data(self.path.parent / data.file, self.within,
                                            self.source)
        else:
            inputs, labels = load_datasets_data(data.datasets, self.source)
        check_data(inputs, labels, self.spec.input_shape, self.classes, self.source)
        return inputs, labels

    def forward(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """Stacked params and buffers {name: [n, *shape]}, inputs [m, ...] -> [n, m, classes]."""
        return vmap(lambda p: functional_call(self.module, p, (x,)))(params)

    def forward_bytes(self, n_inputs: int) -> int:
        """Every layer's output for `n_inputs` inputs, and the inputs, in float32."""
        return self._pair_bytes * n_inputs

    def behaviour(self, weights: torch.Tensor) -> torch.Tensor:
        x, _ = self.test_data_on(weights.device)
        inputs_step = min(len(x), step_size(self._pair_bytes))
        models_step = self.behaviour_chunk or step_size(self.forward_bytes(inputs_step))
        out = torch.empty(len(weights), len(x), dtype=torch.long, device=weights.device)
        with torch.no_grad():
            for start, stop in blocks(len(weights), models_step):
                params = unflatten(weights[start:stop], self._spec)
                for first, last in blocks(len(x), inputs_step):
                    logits = self.forward(params, x[first:last])
                    out[start:stop, first:last] = logits.argmax(dim=-1)
        return out


def _layer_summary(layer) -> str:
    """`Conv2d(1, 8, 3, padding=1)`, or the name alone for a layer without arguments."""
    args = [repr(a) for a in layer.args] + [f"{k}={v!r}" for k, v in layer.kwargs.items()]
    return f"{layer.name}({', '.join(args)})" if args else layer.name


def permute_units(weights: torch.Tensor, spec: ParamSpec, group: PermutationGroup,
                  perm: torch.Tensor) -> torch.Tensor:
    """Models [n, P] with the units of `group` reordered: unit i takes what was unit perm[i]."""
    wide_spec, (wide,) = expand_blocks(spec, [group])
    params = dict(unflatten(weights, wide_spec))
    for name, axis in wide.axes:
        params[name] = params[name].index_select(axis + 1, perm)
    return torch.cat([params[name].reshape(len(weights), -1) for name, _ in wide_spec], dim=1)


def _activations(model: nn.Module, input_shape) -> int:
    """Values every leaf module outputs for one input: the scratch of one forward."""
    total = [0]

    def count(_module, _inputs, output):
        if isinstance(output, torch.Tensor):
            total[0] += output[0].numel()

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(count) for m in leaves]
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape))
    finally:
        for handle in handles:
            handle.remove()
    return max(1, total[0])
