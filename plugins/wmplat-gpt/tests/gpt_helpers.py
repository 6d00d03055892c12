"""What the method's tests share: a real MLP classifier task with hidden-unit symmetry and
per-checkpoint losses (model_metadata), its tiny zoos, and options that fit in a second."""

import importlib.util
import sys
from pathlib import Path

import torch

import wmplat
from wmplat.testing import SpecTask, method_view, tiny_zoo

PACKAGE = Path(__file__).resolve().parents[1]
if importlib.util.find_spec("wmplat_gpt") is None:
    sys.path.insert(0, str(PACKAGE))       # a checkout that is not installed: use the source

torch.set_num_threads(1)

SIZES = [5, 6, 3]


class TinyMLP(wmplat.ClassifierTask):
    """A 5-6-3 ReLU MLP classifying seeded points labelled by a seeded teacher; its model
    metadata is G.pt's: the test set's mean cross-entropy and error."""

    name = "gpt-test-mlp"
    description = "a 5-6-3 MLP on seeded points (wmplat-gpt's tests)"
    architecture = "MLP 5-6-3, ReLU"
    license = "CC0-1.0"

    def __init__(self):
        g = wmplat.random_generator(7)
        x = torch.randn(60, SIZES[0], generator=g)
        self._test = (x, (x @ torch.randn(SIZES[0], SIZES[-1], generator=g)).argmax(dim=1))

    @property
    def param_spec(self):
        return wmplat.mlp_spec(SIZES)

    @property
    def permutation_groups(self):
        return wmplat.mlp_permutation_groups(SIZES)

    def test_data(self):
        return self._test

    def forward(self, params, x):
        return wmplat.mlp_forward(params, x)

    def model_metadata(self, weights):
        x, labels = self._test
        with torch.no_grad():
            logits = wmplat.mlp_forward(_unflatten(weights), x)
            losses = torch.nn.functional.cross_entropy(
                logits.transpose(1, 2), labels.expand(len(weights), -1), reduction="none")
        return {"avg_test_loss": losses.mean(dim=1),
                "avg_test_err": (logits.argmax(dim=2) != labels).float().mean(dim=1)}


class Unmeasured(TinyMLP):
    """TinyMLP that records no metadata: its zoos have no losses to condition on."""

    name = "gpt-test-mlp-unmeasured"

    def model_metadata(self, weights):
        return {}


class MeasuredSpec(SpecTask):
    """The kit's classifier over any param spec, with G.pt's test loss as its metadata."""

    name = "gpt-test-spec"

    def model_metadata(self, weights):
        x, labels = self.test_data()
        with torch.no_grad():
            logits = self.forward(_unflatten(weights, self.param_spec), x)
            losses = torch.nn.functional.cross_entropy(
                logits.transpose(1, 2), labels.expand(len(weights), -1), reduction="none")
        return {"avg_test_loss": losses.mean(dim=1)}


def _unflatten(weights, spec=None):
    out, offset = {}, 0
    for name, shape in spec or wmplat.mlp_spec(SIZES):
        size = torch.Size(shape).numel()
        out[name] = weights[:, offset:offset + size].reshape(len(weights), *shape)
        offset += size
    return out


def mlp_zoo(**options) -> wmplat.Zoo:
    """A tiny zoo of TinyMLP: 4 train runs of 6 checkpoints, each recording its losses (a
    tiny zoo records its task's model_metadata)."""
    return tiny_zoo(TinyMLP, **{"runs": 4, "heldout": 2, "checkpoints": 6, **options})


def mlp_view(**options) -> wmplat.TrainZoo:
    return method_view(mlp_zoo(**options))


TINY = {"steps": 20, "batch_size": 8, "width": 16, "layers": 1, "heads": 2, "timesteps": 20,
        "sampling_steps": 20, "chunk_size": 16, "frequencies": 8, "warmup_steps": 2,
        "alignment_starts": 2, "alignment_prompts": 4}
