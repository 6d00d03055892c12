"""A DDPM over latent vectors, as p-diff configures it: linear betas, the network predicts the
noise (MSE loss), and sampling uses the fixed "large" variance beta_t with the predicted clean
latent clipped to [-1, 1], the range of the encoder's tanh."""

import torch
from torch import nn


def step_features(t: torch.Tensor, size: int, timesteps: int) -> torch.Tensor:
    """Sinusoidal features [n, size] of the steps t [n], at frequencies from 1 to timesteps."""
    freqs = timesteps ** (-torch.arange(size // 2) / max(1, size // 2 - 1))
    angles = t.float().unsqueeze(1) * freqs
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class Denoiser(nn.Module):
    """eps(z_t, t): an MLP of residual blocks, each told the step through sinusoidal features.
    (p-diff's denoiser is a 1-D convolutional encoder-decoder with a learned embedding per
    step; an MLP is enough for latents of a few hundred values, and fixed features let a short
    CPU training generalize across the 1000 steps.)"""

    def __init__(self, dim: int, width: int, blocks: int, timesteps: int):
        super().__init__()
        self.timesteps = timesteps
        self.inp = nn.Linear(dim, width)
        self.time = nn.Sequential(nn.Linear(64, width), nn.SiLU(), nn.Linear(width, width))
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(width), nn.SiLU(), nn.Linear(width, width), nn.SiLU(),
                          nn.Linear(width, width)) for _ in range(blocks))
        self.out = nn.Sequential(nn.LayerNorm(width), nn.SiLU(), nn.Linear(width, dim))

    def forward(self, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        time = self.time(step_features(t, 64, self.timesteps))
        h = self.inp(z) + time
        for block in self.blocks:
            h = h + block(h + time)
        return self.out(h)


class LatentDDPM(nn.Module):
    def __init__(self, dim: int, width: int, blocks: int, timesteps: int, beta_start: float,
                 beta_end: float):
        super().__init__()
        self.timesteps = timesteps
        self.denoiser = Denoiser(dim, width, blocks, timesteps)
        betas = torch.linspace(beta_start, beta_end, timesteps, dtype=torch.float64)
        alpha_bar = torch.cumprod(1 - betas, dim=0)
        alpha_bar_prev = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bar[:-1]])
        schedule = {
            "betas": betas,
            "sqrt_alpha_bar": alpha_bar.sqrt(),
            "sqrt_one_minus_alpha_bar": (1 - alpha_bar).sqrt(),
            # the posterior mean of z_{t-1} given z_t and a predicted z_0
            "coef_z0": betas * alpha_bar_prev.sqrt() / (1 - alpha_bar),
            "coef_zt": (1 - alpha_bar_prev) * (1 - betas).sqrt() / (1 - alpha_bar),
        }
        for name, value in schedule.items():
            self.register_buffer(name, value.float())

    def _at(self, name: str, t: torch.Tensor) -> torch.Tensor:
        return getattr(self, name)[t].unsqueeze(1)

    def noisy(self, z0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """q(z_t | z_0): z_0 scaled down and noised to step t."""
        return self._at("sqrt_alpha_bar", t) * z0 + self._at("sqrt_one_minus_alpha_bar", t) * eps

    def training_loss(self, z0: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """MSE between the true noise and the predicted one, at a random step per latent."""
        t = torch.randint(self.timesteps, (len(z0),), generator=g)
        eps = torch.randn(z0.shape, generator=g)
        return nn.functional.mse_loss(self.denoiser(self.noisy(z0, t, eps), t), eps)

    @torch.no_grad()
    def sample(self, n: int, dim: int, g: torch.Generator, progress=None) -> torch.Tensor:
        """The reverse process from N(0, I): n latents [n, dim] in [-1, 1]."""
        z = torch.randn(n, dim, generator=g)
        for step in reversed(range(self.timesteps)):
            t = torch.full((n,), step, dtype=torch.long)
            eps = self.denoiser(z, t)
            z0 = ((z - self._at("sqrt_one_minus_alpha_bar", t) * eps)
                  / self._at("sqrt_alpha_bar", t)).clamp(-1, 1)
            z = self._at("coef_z0", t) * z0 + self._at("coef_zt", t) * z
            if step > 0:
                z = z + self._at("betas", t).sqrt() * torch.randn(n, dim, generator=g)
            z = z.clamp(-1, 1)
            if progress is not None:
                progress()
        return z

