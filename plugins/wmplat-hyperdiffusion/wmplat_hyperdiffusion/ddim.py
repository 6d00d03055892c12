"""The diffusion of HyperDiffusion: linear betas over T steps, a network that predicts the clean
weights x0 (trained by MSE to x0), and DDIM sampling with eta = 0, the deterministic path from
the start noise (HyperDiffusion walks every one of the T steps; fewer are an option).
"""

from collections.abc import Callable

import torch

ONE = torch.tensor(1.0)      # alpha_bar before the first step: no noise at all
X0Predictor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]    # (x_t [n, d], t [n])


class Schedule:
    """alpha_bar_t = prod_{s <= t} (1 - beta_s), betas linear from beta_start to beta_end;
    computed in float64 and kept in float32."""

    def __init__(self, timesteps: int, beta_start: float, beta_end: float):
        self.timesteps = timesteps
        betas = torch.linspace(beta_start, beta_end, timesteps, dtype=torch.float64)
        self.betas = betas.float()
        self.alpha_bar = torch.cumprod(1 - betas, dim=0).float()

    def noisy(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """q(x_t | x0) = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) noise."""
        a = self.alpha_bar[t].unsqueeze(1)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def training_loss(self, predict_x0: X0Predictor, x0: torch.Tensor,
                      g: torch.Generator) -> torch.Tensor:
        """MSE between x0 and its prediction from x_t, t uniform over the T steps."""
        t = torch.randint(self.timesteps, (len(x0),), generator=g)
        noise = torch.randn(x0.shape, generator=g)
        return torch.nn.functional.mse_loss(predict_x0(self.noisy(x0, t, noise), t), x0)


def ddim_steps(timesteps: int, steps: int) -> list[int]:
    """The `steps` diffusion steps DDIM visits, from the last (T - 1) down to 0, evenly spread;
    all T when steps == T."""
    if not 1 <= steps <= timesteps:
        raise ValueError(f"DDIM steps must be 1 to {timesteps}, got {steps}")
    if steps == 1:
        return [timesteps - 1]
    spread = torch.linspace(0, timesteps - 1, steps, dtype=torch.float64).round().long()
    return spread.flip(0).tolist()


@torch.no_grad()
def ddim_sample(predict_x0: X0Predictor, noise: torch.Tensor, schedule: Schedule,
                steps: int, progress: Callable[[], None] | None = None) -> torch.Tensor:
    """DDIM with eta = 0 from x_T = `noise` [n, d]: at each visited step t, with x0 predicted,
    x_prev = sqrt(alpha_bar_prev) x0 + sqrt(1 - alpha_bar_prev) eps, where eps is the noise
    that x0 implies in x_t. After the last step (alpha_bar_prev = 1) x is exactly the last
    prediction. `progress` is called after each step."""
    visited = ddim_steps(schedule.timesteps, steps)
    x = noise
    for i, step in enumerate(visited):
        t = torch.full((len(x),), step, dtype=torch.long)
        x0 = predict_x0(x, t)
        a = schedule.alpha_bar[step]
        a_prev = schedule.alpha_bar[visited[i + 1]] if i + 1 < len(visited) else ONE
        eps = (x - a.sqrt() * x0) / (1 - a).sqrt()
        x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
        if progress is not None:
            progress()
    return x
