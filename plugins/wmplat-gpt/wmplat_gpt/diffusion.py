"""G.pt's Gaussian diffusion over parameter vectors: linear betas (1e-4 to 0.02 for T = 1000,
scaled by 1000 / T for other T as the improved-DDPM code G.pt uses does, capped at 0.999), the
network predicts the clean vector x0 (MSE loss), and sampling is DDPM ancestral sampling with
the fixed "large" variance and no clipping. Sampling may take fewer steps than T: the kept steps
are evenly spaced and their betas recomputed from the kept cumulative alphas (improved DDPM's
respacing), the network still told each step's original index."""

import torch


def linear_betas(timesteps: int) -> torch.Tensor:
    """Linear from 1e-4 to 0.02 at T = 1000, both ends scaled by 1000 / T, capped at 0.999
    (below T = 50 the scaled end would pass 1)."""
    scale = 1000 / timesteps
    betas = torch.linspace(scale * 1e-4, scale * 0.02, timesteps, dtype=torch.float64)
    return betas.clamp(max=0.999)


def spaced_steps(timesteps: int, count: int) -> list[int]:
    """`count` of the steps 0 .. timesteps - 1, evenly spaced, first and last included."""
    if count >= timesteps:
        return list(range(timesteps))
    stride = (timesteps - 1) / (count - 1) if count > 1 else 1
    return sorted({round(i * stride) for i in range(count)})


class Diffusion:
    def __init__(self, timesteps: int):
        self.timesteps = timesteps
        self.alpha_bar = torch.cumprod(1 - linear_betas(timesteps), dim=0)

    def noisy(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """q(x_t | x0) for steps t [n]."""
        a = self.alpha_bar[t].float().unsqueeze(1)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def training_loss(self, predict_x0, x0: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """MSE between x0 and predict_x0(x_t, t), at a uniform random step per vector."""
        t = torch.randint(self.timesteps, (len(x0),), generator=g)
        noise = torch.randn(x0.shape, generator=g)
        return torch.nn.functional.mse_loss(predict_x0(self.noisy(x0, t, noise), t), x0)

    @torch.no_grad()
    def sample(self, predict_x0, shape: tuple[int, int], steps: int, g: torch.Generator,
               progress=None) -> torch.Tensor:
        """Ancestral sampling from N(0, I) over `steps` evenly spaced steps (all T by default in
        the method's config); predict_x0(x_t, t) gets each step's original index."""
        kept = spaced_steps(self.timesteps, steps)
        alpha_bar = self.alpha_bar[kept]
        alpha_bar_prev = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bar[:-1]])
        betas = 1 - alpha_bar / alpha_bar_prev
        coef_x0 = betas * alpha_bar_prev.sqrt() / (1 - alpha_bar)
        coef_xt = (1 - alpha_bar_prev) * (1 - betas).sqrt() / (1 - alpha_bar)
        posterior_var = betas * (1 - alpha_bar_prev) / (1 - alpha_bar)
        # "fixed large": beta_t, with the posterior's variance at the first step (unused: the
        # last update adds no noise), as improved DDPM defines it
        variance = torch.cat([posterior_var[1:2], betas[1:]]) if len(kept) > 1 else posterior_var
        x = torch.randn(shape, generator=g)
        for i in reversed(range(len(kept))):
            t = torch.full((shape[0],), kept[i], dtype=torch.long)
            x0 = predict_x0(x, t)
            x = float(coef_x0[i]) * x0 + float(coef_xt[i]) * x
            if i > 0:
                x = x + float(variance[i]) ** 0.5 * torch.randn(shape, generator=g)
            if progress is not None:
                progress()
        return x
