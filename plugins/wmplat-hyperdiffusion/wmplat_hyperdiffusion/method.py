"""The method `hyperdiffusion` (Erkoç, Ma, Shan, Nießner & Dai 2023, "HyperDiffusion").

fit: the train checkpoints, as they are (HyperDiffusion diffuses raw weights; normalising them
is an option), cut into one token per parameter tensor; a transformer learns to predict the
clean weights x0 from noisy ones at a uniform step of a T-step linear-beta diffusion.
sample: DDIM with eta = 0 from Gaussian noise. No permutation handling: HyperDiffusion's fields
all start from one fitted field, so they share one alignment.
"""

from math import prod
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

import wmplat

from .ddim import Schedule, ddim_sample
from .denoiser import Denoiser
from .tokens import TokenLayout

SAMPLE_BATCH = 512          # samples denoised together (the memory of one batch, not the result)


class HyperDiffusionConfig(BaseModel):
    """Defaults fit and sample in a few minutes on one CPU thread for a zoo of a few hundred
    fields of a few thousand parameters; the README lists the paper's values."""

    model_config = ConfigDict(extra="forbid")
    width: int = Field(64, ge=1, description="transformer width (paper: 2880; 1920 for cars)")
    layers: int = Field(4, ge=1, description="transformer blocks (paper: 12)")
    heads: int = Field(4, ge=1, description="attention heads, dividing width (paper: 16)")
    chunk: int | None = Field(None, ge=1, description="cut tensors longer than this into "
                                                      "tokens of this many values (default: "
                                                      "one token per tensor, as the paper)")
    steps: int = Field(3000, ge=1, description="training iterations (paper: 6000 epochs)")
    batch_size: int = Field(32, ge=1, description="checkpoints per iteration (paper: 32)")
    lr: float = Field(1e-3, gt=0, description="AdamW learning rate (paper: 2e-4)")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay (paper: torch's "
                                                        "default, 0.01)")
    lr_decay_every: int | None = Field(None, ge=1, description="multiply the learning rate by "
                                                               "0.9 every this many iterations "
                                                               "(paper: every 200 epochs)")
    timesteps: int = Field(500, ge=1, description="diffusion steps T (paper: 500)")
    beta_start: float = Field(1e-4, gt=0, lt=1, description="first beta (paper: 1e-4)")
    beta_end: float = Field(2e-2, gt=0, lt=1, description="last beta (paper: 2e-2)")
    ddim_steps: int = Field(500, ge=1, description="DDIM steps when sampling, at most "
                                                   "timesteps (paper: all T)")
    normalization: Literal["none", "global", "tensor"] = Field(
        "none", description="diffuse raw weights (none, the paper), or standardised by one "
                            "mean and std (global) or by each tensor's (tensor)")

    @model_validator(mode="after")
    def _consistent(self):
        if self.width % self.heads:
            raise ValueError(f"heads ({self.heads}) must divide width ({self.width})")
        if self.beta_end < self.beta_start:
            raise ValueError(f"beta_end ({self.beta_end}) must not be below beta_start "
                             f"({self.beta_start})")
        if self.ddim_steps > self.timesteps:
            raise ValueError(f"ddim_steps ({self.ddim_steps}) must be at most timesteps "
                             f"({self.timesteps})")
        return self


class Standardizer:
    """x -> (x - center) / scale, and back: by one mean and std ("global"), by each parameter
    tensor's ("tensor"), or not at all ("none")."""

    def __init__(self, spec: list[tuple[str, tuple[int, ...]]], weights: torch.Tensor,
                 kind: str):
        if kind == "none":
            self.center, self.scale = torch.zeros(1), torch.ones(1)
            return
        sizes = [prod(shape) for _, shape in spec] if kind == "tensor" else [weights.shape[1]]
        sizes = [size for size in sizes if size > 0]
        parts = torch.split(weights, sizes, dim=1)
        self.center = torch.cat([p.mean().expand(s) for p, s in zip(parts, sizes, strict=True)])
        self.scale = torch.cat([p.std(correction=0).clamp_min(1e-12).expand(s)
                                for p, s in zip(parts, sizes, strict=True)])

    def forward(self, weights: torch.Tensor) -> torch.Tensor:
        return (weights - self.center) / self.scale

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.center


def batches(count: int, size: int, steps: int, g: torch.Generator):
    """`steps` index batches [min(size, count)]: epochs of shuffled indices, read in order."""
    size = min(size, count)
    order = torch.empty(0, dtype=torch.long)
    for _ in range(steps):
        if len(order) < size:
            order = torch.cat([order, torch.randperm(count, generator=g)])
        batch, order = order[:size], order[size:]
        yield batch


class HyperDiffusion(wmplat.Method):
    name = "hyperdiffusion"
    Config = HyperDiffusionConfig

    def fit(self, zoo: wmplat.TrainZoo, seed: int) -> None:
        c = self.config
        weights = zoo.train_weights()
        self.layout = TokenLayout(zoo.param_spec, c.chunk)
        self.standardizer = Standardizer(zoo.param_spec, weights, c.normalization)
        x = self.standardizer.forward(weights)
        self.schedule = Schedule(c.timesteps, c.beta_start, c.beta_end)
        # Module initialisation draws from the global generator: seed it in a private copy.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.denoiser = Denoiser(self.layout.sizes, c.width, c.layers, c.heads)
        wmplat.status(f"hyperdiffusion: {self.layout.num_tokens} weight tokens + 1 timestep "
                      f"token, {sum(p.numel() for p in self.denoiser.parameters()):,} network "
                      f"parameters, {len(x)} train checkpoints")
        self.loss = self._train(x, wmplat.random_generator(seed))
        wmplat.status(f"hyperdiffusion: x0 loss {self.loss:.4g} (mean of the last 10% of "
                      "iterations)")

    def predict_x0(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The network on flat (standardised) weights [n, num_params]."""
        return self.layout.join(self.denoiser(self.layout.split(x), t))

    def _train(self, x: torch.Tensor, g: torch.Generator) -> float:
        c = self.config
        optimizer = torch.optim.AdamW(self.denoiser.parameters(), lr=c.lr,
                                      weight_decay=c.weight_decay)
        every = c.lr_decay_every or c.steps + 1              # without a decay: never
        decay = torch.optim.lr_scheduler.StepLR(optimizer, every, gamma=0.9)
        self.denoiser.train()
        tail = []
        with wmplat.progress_bar(c.steps, "hyperdiffusion fit", mininterval=1.0) as progress:
            for step, batch in enumerate(batches(len(x), c.batch_size, c.steps, g)):
                loss = self.schedule.training_loss(self.predict_x0, x[batch], g)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                decay.step()
                if step >= c.steps - max(1, c.steps // 10):
                    tail.append(loss.item())
                progress.update()
        self.denoiser.eval()
        return sum(tail) / len(tail)

    def sample(self, n: int, seed: int) -> torch.Tensor:
        c = self.config
        noise = torch.randn(n, self.layout.num_params, generator=wmplat.random_generator(seed))
        out = []
        starts = range(0, n, SAMPLE_BATCH)
        with wmplat.progress_bar(len(starts) * c.ddim_steps, "hyperdiffusion sampling") as bar:
            for start in starts:
                x = ddim_sample(self.predict_x0, noise[start:start + SAMPLE_BATCH],
                                self.schedule, c.ddim_steps, bar.update)
                out.append(self.standardizer.inverse(x))
        return torch.cat(out).float()
