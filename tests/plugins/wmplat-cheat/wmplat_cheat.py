"""Methods that try every route to the heldout runs a method must never see."""

import gc
import json
import os
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

import wmplat


class _Cheat(wmplat.Method):
    """Samples cycle through the final checkpoints of the heldout runs it found."""

    def fit(self, zoo, seed):
        self.found = self.heldout(zoo)

    def sample(self, n, seed):
        return self.found[torch.arange(n) % len(self.found)].clone()


class TaskView(_Cheat):
    """Retrains the heldout runs through the task it was given."""

    name = "cheat-task-view"

    def heldout(self, zoo):
        checkpoints, _ = zoo.task.train_runs(range(64, 96))
        return checkpoints[:, -1]


class Retrain(_Cheat):
    """Imports the task class and retrains the runs that the provenance and records imply."""

    name = "cheat-retrain"

    def heldout(self, zoo):
        from wmplat.tasks.digits_mlp import DigitsMLP

        seen = {m.run for m in zoo.train_models()}
        unseen = [r for r in range(max(seen) + 1, max(seen) + 33)]
        checkpoints, _ = DigitsMLP().train_runs(unseen)
        return checkpoints[:, -1]


class OpenZoo(_Cheat):
    """Opens the zoo again by name through wmplat's internals."""

    name = "cheat-open-zoo"

    def heldout(self, zoo):
        from wmplat.plugins import load_plugins
        from wmplat.zoo.catalogue import open_zoo

        return open_zoo(zoo.name, load_plugins()).heldout_weights()


def _from_disk(name):
    folder = Path(os.environ["WMPLAT_HOME"]) / "zoos" / name
    manifest = json.loads((folder / "manifest.json").read_text())
    models, tensors = manifest["models"], load_file(folder / "weights.safetensors")
    flat = torch.cat([tensors[p["name"]].reshape(len(models), -1)
                      for p in manifest["param_spec"]], dim=1)
    return flat[[i for i, m in enumerate(models) if m["split"] == "heldout"]]


class Disk(_Cheat):
    """Reads the zoo's files in $WMPLAT_HOME."""

    name = "cheat-disk"

    def heldout(self, zoo):
        return _from_disk(zoo.name)


class NearCopy(_Cheat):
    """Heldout models from disk, their hidden units shuffled and a little noise added."""

    name = "cheat-near-copy"

    def heldout(self, zoo):
        weights = _from_disk(zoo.name)
        g = torch.Generator().manual_seed(0)
        params = zoo.unflatten(weights)
        perm = torch.randperm(params["fc1.weight"].shape[1], generator=g)
        params = {**params, "fc1.weight": params["fc1.weight"][:, perm],
                  "fc1.bias": params["fc1.bias"][:, perm],
                  "fc2.weight": params["fc2.weight"][:, :, perm]}
        shuffled = zoo.flatten(params)
        return shuffled + 0.01 * torch.randn(shuffled.shape, generator=g)


def _is_full_zoo(obj):
    try:
        return type(obj).__name__ == "Zoo" and obj.heldout_weights() is not None
    except Exception:
        return False


class Gc(_Cheat):
    """Finds the runner's zoo among the interpreter's objects."""

    name = "cheat-gc"

    def heldout(self, zoo):
        return next(o for o in gc.get_objects() if _is_full_zoo(o)).heldout_weights()


class Frames(_Cheat):
    """Finds the runner's zoo in the locals of its callers' frames."""

    name = "cheat-frames"

    def heldout(self, zoo):
        frame = sys._getframe()
        while frame is not None:
            for value in list(frame.f_locals.values()):
                if _is_full_zoo(value):
                    return value.heldout_weights()
            frame = frame.f_back
        raise LookupError("no zoo in any caller's frame")


class OneLeak(_Cheat):
    """Honest copies of training checkpoints, but one sample is a heldout model."""

    name = "cheat-one-leak"

    def heldout(self, zoo):
        return _from_disk(zoo.name)[:1]

    def sample(self, n, seed):
        train = self.train[torch.arange(n) % len(self.train)].clone()
        train[n // 2] = self.found[0]
        return train

    def fit(self, zoo, seed):
        super().fit(zoo, seed)
        self.train = zoo.train_weights()


@wmplat.hookimpl
def register_methods(register):
    for cls in (TaskView, Retrain, OpenZoo, Disk, NearCopy, Gc, Frames, OneLeak):
        register(cls)
