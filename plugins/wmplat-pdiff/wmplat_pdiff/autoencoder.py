"""p-diff's autoencoder: 1-D convolutions over a flat parameter vector, trained with noise.

The vector is zero-padded to a multiple of fold**depth and read as a 1-channel signal. Each
encoder stage is instance norm, a length-preserving convolution, LeakyReLU, instance norm and
a convolution of kernel and stride `fold` that shortens the signal `fold` times; the last stage
ends in tanh, so latents lie in [-1, 1]. The decoder mirrors it with transposed convolutions.
Training adds noise to the input and to the latent, p-diff's augmentation:
x -> (1 - f) x + f * N(0, 1).
"""

import math

import torch
from torch import nn


def augment(x: torch.Tensor, factor: float, g: torch.Generator) -> torch.Tensor:
    """p-diff's noise augmentation: shrink towards zero by `factor`, add N(0, factor^2)."""
    return (1 - factor) * x + factor * torch.randn(x.shape, generator=g)


def _same(c_in: int, c_out: int) -> nn.Conv1d:
    return nn.Conv1d(c_in, c_out, kernel_size=3, padding=1)


class Autoencoder(nn.Module):
    def __init__(self, length: int, channels: int, latent_channels: int, fold: int, depth: int):
        super().__init__()
        self.length = length
        scale = fold ** depth
        self.padded = math.ceil(length / scale) * scale
        self.latent_shape = (latent_channels, self.padded // scale)
        self.encoder = nn.Sequential(*[
            nn.Sequential(
                nn.InstanceNorm1d(1 if i == 0 else channels), _same(1 if i == 0 else channels,
                                                                    channels),
                nn.LeakyReLU(), nn.InstanceNorm1d(channels),
                nn.Conv1d(channels, latent_channels if i == depth - 1 else channels, fold,
                          stride=fold),
                nn.Tanh() if i == depth - 1 else nn.LeakyReLU())
            for i in range(depth)])
        self.decoder = nn.Sequential(*[
            nn.Sequential(
                nn.InstanceNorm1d(latent_channels if i == 0 else channels),
                nn.ConvTranspose1d(latent_channels if i == 0 else channels, channels, fold,
                                   stride=fold),
                nn.LeakyReLU(), nn.InstanceNorm1d(channels),
                _same(channels, 1 if i == depth - 1 else channels),
                *([] if i == depth - 1 else [nn.LeakyReLU()]))
            for i in range(depth)])

    @property
    def latent_dim(self) -> int:
        return math.prod(self.latent_shape)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """[n, length] -> latents [n, latent_dim] in [-1, 1]."""
        padded = nn.functional.pad(x, (0, self.padded - self.length)).unsqueeze(1)
        return self.encoder(padded).flatten(1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """[n, latent_dim] -> [n, length]."""
        out = self.decoder(z.reshape(len(z), *self.latent_shape))
        return out.squeeze(1)[:, :self.length]

    def training_loss(self, x: torch.Tensor, input_noise: float, latent_noise: float,
                      g: torch.Generator) -> torch.Tensor:
        """Reconstruction MSE of x through the noisy encoder and decoder."""
        z = augment(self.encode(augment(x, input_noise, g)), latent_noise, g).clamp(-1, 1)
        return nn.functional.mse_loss(self.decode(z), x)
