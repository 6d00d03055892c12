"""Methods that each break the plugin contract in one way, for wmplat's error tests."""

import torch
from pydantic import BaseModel, ConfigDict

import wmplat


class _Base(wmplat.Method):
    def fit(self, zoo, seed):
        self.num_params = zoo.num_params


class WrongShape(_Base):
    name = "wrong-shape"

    def sample(self, n, seed):
        return torch.zeros(n, self.num_params + 1)


class NanWeights(_Base):
    name = "nan-weights"

    def sample(self, n, seed):
        out = torch.zeros(n, self.num_params)
        out[0, 3] = float("nan")
        return out


class IntWeights(_Base):
    name = "int-weights"

    def sample(self, n, seed):
        return torch.zeros(n, self.num_params, dtype=torch.int64)


class HugeWeights(_Base):
    """Finite in float32, but far beyond any trained network."""

    name = "huge-weights"

    def sample(self, n, seed):
        out = torch.zeros(n, self.num_params)
        out[1, 5] = 1e38
        out[2, :3] = -2e6
        return out


class HugeDoubles(_Base):
    """Finite in float64, infinite once converted to float32."""

    name = "huge-doubles"

    def sample(self, n, seed):
        out = torch.zeros(n, self.num_params, dtype=torch.float64)
        out[0, 0] = 1e300
        return out


class PeekHeldout(_Base):
    name = "peek-heldout"

    def fit(self, zoo, seed):
        self.w = zoo.heldout_weights()


class CrashInFit(_Base):
    name = "crash-in-fit"

    def fit(self, zoo, seed):
        raise RuntimeError("out of coffee")


class ScaledConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scale: float = 1.0


class Scaled(_Base):
    """Well-behaved, with a config: the training mean times `scale`."""

    name = "scaled"
    Config = ScaledConfig

    def fit(self, zoo, seed):
        self.mean = zoo.train_weights().mean(dim=0)

    def sample(self, n, seed):
        return self.config.scale * self.mean.expand(n, -1).clone()


@wmplat.hookimpl
def register_methods(register):
    for cls in (WrongShape, NanWeights, IntWeights, HugeWeights, HugeDoubles, PeekHeldout,
                CrashInFit, Scaled):
        register(cls)
