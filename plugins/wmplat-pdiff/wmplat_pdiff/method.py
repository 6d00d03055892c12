"""The method `pdiff` (Wang et al. 2024, "Neural Network Diffusion").

fit: find the trained subset of parameters, normalize it, train the 1-D convolutional
autoencoder on the train checkpoints' subsets (with input and latent noise), then a DDPM on
their latents. sample: run the reverse process, decode, undo the normalization and paste the
subset into the last train checkpoint, whose other parameters are the frozen network.
"""

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

import wmplat

from .autoencoder import Autoencoder
from .ddpm import LatentDDPM


class PdiffConfig(BaseModel):
    """Defaults fit and sample in about a minute on one CPU thread; the README lists the
    paper's values."""

    model_config = ConfigDict(extra="forbid")
    params: list[str] | None = Field(
        None, description="names of the generated parameters (default: every parameter that "
                          "varies across the train checkpoints)")
    normalize: Literal["global", "coordinate"] = Field(
        "global", description="standardize the subset by one mean and std (global, keeps "
                              "p-diff's raw geometry) or per coordinate")
    channels: int = Field(16, ge=1, description="autoencoder convolution channels")
    latent_channels: int = Field(4, ge=1, description="channels of the latent signal")
    fold: int = Field(4, ge=2, description="how many times each encoder stage shortens")
    depth: int = Field(2, ge=1, description="encoder (and decoder) stages")
    input_noise: float = Field(0.001, ge=0, le=1, description="input noise augmentation")
    latent_noise: float = Field(0.1, ge=0, le=1, description="latent noise augmentation")
    ae_steps: int = Field(1000, ge=1, description="autoencoder training steps")
    ddpm_steps: int = Field(2000, ge=1, description="DDPM training steps")
    batch_size: int = Field(50, ge=1, description="checkpoints per training step")
    lr: float = Field(1e-3, gt=0, description="AdamW learning rate, both stages")
    weight_decay: float = Field(2e-6, ge=0, description="AdamW weight decay, both stages")
    timesteps: int = Field(1000, ge=1, description="diffusion steps T")
    beta_start: float = Field(1e-4, gt=0, lt=1, description="first beta of the linear schedule")
    beta_end: float = Field(2e-2, gt=0, lt=1, description="last beta of the linear schedule")
    denoiser_width: int = Field(256, ge=1, description="width of the denoiser MLP")
    denoiser_blocks: int = Field(2, ge=1, description="residual blocks of the denoiser MLP")

    @model_validator(mode="after")
    def _increasing_betas(self):
        if self.beta_end < self.beta_start:
            raise ValueError(f"beta_end ({self.beta_end}) must not be below beta_start "
                             f"({self.beta_start})")
        return self


def varying_params(zoo: wmplat.Zoo, weights: torch.Tensor) -> list[str]:
    """The parameters with an entry that differs between two of `weights`: what kept
    training (a whole layer, even where a dead unit left some entries unchanged)."""
    varies = zoo.unflatten((weights.amax(dim=0) != weights.amin(dim=0)).unsqueeze(0))
    return [name for name, changed in varies.items() if changed.any()]


def subset_names(zoo: wmplat.Zoo, weights: torch.Tensor, names: list[str] | None) -> list[str]:
    """The generated parameters: `names`, checked against the zoo, or by default those that
    vary across `weights`."""
    if names is None:
        names = varying_params(zoo, weights)
        if not names:
            raise wmplat.ConfigError("pdiff: the train checkpoints are all identical, so there "
                                     "is no trained subset to learn; name one with "
                                     "--set 'params=[...]'")
    known = [name for name, _ in zoo.param_spec]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise wmplat.ConfigError(f"pdiff: params {names} must name parameters of the zoo; "
                                 f"unknown: {unknown}; the zoo has {known}")
    return names


def fit_module(module: torch.nn.Module, loss_of, data: torch.Tensor, steps: int,
               config: PdiffConfig, g: torch.Generator, desc: str) -> float:
    """AdamW on random mini-batches of `data`; returns the mean loss of the last 10% steps."""
    optimizer = torch.optim.AdamW(module.parameters(), lr=config.lr,
                                  weight_decay=config.weight_decay)
    module.train()
    tail = []
    with wmplat.progress_bar(steps, desc, mininterval=1.0) as progress:
        for step in range(steps):
            batch = data[torch.randperm(len(data), generator=g)[:config.batch_size]]
            loss = loss_of(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if step >= steps - max(1, steps // 10):
                tail.append(loss.item())
            progress.update()
            if step % 100 == 0:
                progress.set_postfix(loss=f"{loss.item():.4g}", refresh=False)
    module.eval()
    return sum(tail) / len(tail)


class Pdiff(wmplat.Method):
    name = "pdiff"
    Config = PdiffConfig

    def fit(self, zoo: wmplat.Zoo, seed: int) -> None:
        c = self.config
        weights = zoo.train_weights()
        self.params = subset_names(zoo, weights, c.params)
        self.mask = wmplat.param_mask(zoo.param_spec, self.params).bool()
        steps = torch.tensor([m.step for m in zoo.train_models()])
        self.template = weights[int(torch.argmax(steps))]
        x = weights[:, self.mask]
        dim = None if c.normalize == "global" else 0
        self.center = x.mean(dim=dim)
        self.scale = x.std(dim=dim, correction=0).clamp_min(1e-12)
        x = (x - self.center) / self.scale
        g = wmplat.random_generator(seed)
        # Module initialisation draws from the global generator: seed it in a private copy.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.autoencoder = Autoencoder(x.shape[1], c.channels, c.latent_channels, c.fold,
                                           c.depth)
            self.ddpm = LatentDDPM(self.autoencoder.latent_dim, c.denoiser_width,
                                   c.denoiser_blocks, c.timesteps, c.beta_start, c.beta_end)
        wmplat.status(f"pdiff: generating {', '.join(self.params)} ({x.shape[1]} of "
                      f"{zoo.num_params} values) from {len(x)} train checkpoints; latent "
                      f"{self.autoencoder.latent_dim}")
        self.ae_loss = fit_module(
            self.autoencoder,
            lambda b: self.autoencoder.training_loss(b, c.input_noise, c.latent_noise, g),
            x, c.ae_steps, c, g, "pdiff autoencoder")
        with torch.no_grad():
            latents = self.autoencoder.encode(x)
        self.ddpm_loss = fit_module(self.ddpm, lambda b: self.ddpm.training_loss(b, g), latents,
                               c.ddpm_steps, c, g, "pdiff ddpm")
        wmplat.status(f"pdiff: autoencoder loss {self.ae_loss:.4g}, ddpm loss {self.ddpm_loss:.4g}")

    def generate_subsets(self, n: int, seed: int) -> torch.Tensor:
        """n generated subsets [n, subset size], in the zoo's units."""
        g = wmplat.random_generator(seed)
        with wmplat.progress_bar(self.ddpm.timesteps, "pdiff sampling") as progress:
            z = self.ddpm.sample(n, self.autoencoder.latent_dim, g, progress.update)
        with torch.no_grad():
            return self.autoencoder.decode(z) * self.scale + self.center

    def sample(self, n: int, seed: int) -> torch.Tensor:
        out = self.template.repeat(n, 1)
        out[:, self.mask] = self.generate_subsets(n, seed)
        return out
