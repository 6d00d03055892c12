"""Sampling latents: a Gaussian kernel density estimate per latent dimension, fitted on the
latents of the best models (Schürholt et al.'s S_KDE30).

Sampling a Gaussian KDE = pick one of its data points, add N(0, bandwidth^2). Here the pick
is made independently for every dimension, as the paper describes. The bandwidth is relative
to each dimension's standard deviation over the fitted latents, so it means the same whatever
scale the autoencoder gives its latents. `couple_dims` reproduces the paper's public code
instead: it reseeds scikit-learn's sampler identically for every dimension, so every dimension
picks the same model and the same noise draw.
"""

import torch


def top_share(quality: torch.Tensor, share: float) -> torch.Tensor:
    """Indices of the models at or above the (1 - share) quantile of quality."""
    threshold = torch.quantile(quality.double(), 1.0 - share)
    return (quality.double() >= threshold).nonzero().squeeze(1)


class LatentKDE:
    def __init__(self, latents: torch.Tensor, bandwidth: float, couple_dims: bool = False):
        self.latents = latents                                        # [k, d]
        self.scale = bandwidth * latents.std(dim=0) if len(latents) > 1 \
            else torch.full((latents.shape[1],), bandwidth)
        self.couple_dims = couple_dims

    def sample(self, n: int, g: torch.Generator) -> torch.Tensor:
        k, d = self.latents.shape
        if self.couple_dims:
            pick = torch.randint(k, (n, 1), generator=g).expand(n, d)
            noise = torch.randn(n, 1, generator=g).expand(n, d)
        else:
            pick = torch.randint(k, (n, d), generator=g)
            noise = torch.randn(n, d, generator=g)
        return self.latents.gather(0, pick) + self.scale * noise
