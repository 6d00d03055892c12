"""A test plugin: a linear classifier on two Gaussian blobs whose canonical zoo ships as the
folder WMPLAT_TEST_SHIPPED names, pinned by WMPLAT_TEST_SHIPPED_SHA256; with those unset it
ships none and is trained. WMPLAT_TEST_BUILD_SECONDS makes training last at least that long,
so that tests can start two processes inside one build."""

import os
import time
from pathlib import Path

import torch

import wmplat


class Blobs(wmplat.ClassifierTask):
    name = "blobs-shipped"
    description = "linear classifier on two Gaussian blobs, with a shipped zoo"
    architecture = "linear 2-2 (6 parameters)"
    license = "MIT"

    @property
    def param_spec(self):
        return [("weight", (2, 2)), ("bias", (2,))]

    @classmethod
    def shipped_zoo(cls):
        folder = os.environ.get("WMPLAT_TEST_SHIPPED")
        if not folder:
            return None
        return wmplat.ShippedZoo(Path(folder), os.environ["WMPLAT_TEST_SHIPPED_SHA256"])

    def data(self, seed):
        g = torch.Generator().manual_seed(seed)
        y = torch.randint(2, (200,), generator=g)
        return torch.randn(200, 2, generator=g) + 2.0 * (y[:, None] * 2 - 1), y

    def test_data(self):
        return self.data(12345)

    def forward(self, params, x):
        return torch.einsum("mi,noi->nmo", x, params["weight"]) + params["bias"][:, None, :]

    def build_zoo(self):
        start = time.monotonic()
        x, y = self.data(0)
        weights, models = [], []
        for run in range(6):
            g = torch.Generator().manual_seed(run)
            p = {"weight": torch.randn(1, 2, 2, generator=g).requires_grad_(),
                 "bias": torch.zeros(1, 2).requires_grad_()}
            opt = torch.optim.SGD(p.values(), lr=0.1)
            for step in range(1, 21):
                loss = torch.nn.functional.cross_entropy(self.forward(p, x)[0], y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                if step % 10 == 0:
                    weights.append(torch.cat([p["weight"].detach().reshape(1, -1),
                                              p["bias"].detach()], dim=1))
                    models.append({"id": f"run{run}-step{step}", "run": run, "step": step,
                                   "seed": run, "split": "train" if run < 4 else "heldout",
                                   "quality": 0.0})
        weights = torch.cat(weights)
        for m, q in zip(models, self.quality(self.behaviour(weights)), strict=True):
            m["quality"] = round(float(q), 6)
        time.sleep(max(0.0, float(os.environ.get("WMPLAT_TEST_BUILD_SECONDS", 0))
                       - (time.monotonic() - start)))
        return wmplat.BuiltZoo(weights=weights, models=models, provenance={"recipe": "sgd"})


@wmplat.hookimpl
def register_datasets(register):
    register(Blobs)
