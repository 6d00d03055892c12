"""The transformer autoencoder of Hyper-Representations.

Encoder: each token (one unit's weights) is embedded by a linear map of its own layer, a
learned position embedding is added, a transformer encoder mixes the tokens, and a linear
bottleneck maps the whole sequence to the latent vector. Decoder: the mirror image, a linear
map from the latent to a sequence, a transformer, and a linear read-out per layer back to
token values. A small projection head maps latents to the space of the contrastive loss.
"""

import torch
from torch import nn


class TokenAutoencoder(nn.Module):
    def __init__(self, layer: torch.Tensor, width: int, d_model: int, heads: int,
                 blocks: int, ff: int, latent: int, projection: int, dropout: float):
        super().__init__()
        self.register_buffer("layer", layer)                            # [T] layer of token
        tokens, layers = len(layer), int(layer.max()) + 1
        self.tokens, self.d_model = tokens, d_model
        self.embed = nn.Parameter(torch.randn(layers, width, d_model) / width ** 0.5)
        self.embed_bias = nn.Parameter(torch.zeros(layers, d_model))
        self.enc_pos = nn.Parameter(0.02 * torch.randn(tokens, d_model))
        self.dec_pos = nn.Parameter(0.02 * torch.randn(tokens, d_model))
        self.encoder = _transformer(d_model, heads, blocks, ff, dropout)
        self.decoder = _transformer(d_model, heads, blocks, ff, dropout)
        self.to_latent = nn.Linear(tokens * d_model, latent)
        self.from_latent = nn.Linear(latent, tokens * d_model)
        self.readout = nn.Parameter(torch.randn(layers, d_model, width) / d_model ** 0.5)
        self.readout_bias = nn.Parameter(torch.zeros(layers, width))
        self.head = nn.Sequential(nn.Linear(latent, latent), nn.ReLU(),
                                  nn.Linear(latent, projection))

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        """[n, T, W] -> [n, latent]"""
        h = torch.einsum("ntw,twd->ntd", tokens, self.embed[self.layer])
        h = self.encoder(h + self.embed_bias[self.layer] + self.enc_pos)
        return self.to_latent(h.flatten(1))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """[n, latent] -> [n, T, W]"""
        h = self.from_latent(z).reshape(len(z), self.tokens, self.d_model)
        h = self.decoder(h + self.dec_pos)
        return torch.einsum("ntd,tdw->ntw", h, self.readout[self.layer]) \
            + self.readout_bias[self.layer]

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(tokens)
        return z, self.decode(z)


def _transformer(d_model, heads, blocks, ff, dropout) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(d_model, heads, ff, dropout, batch_first=True,
                                       norm_first=True)
    return nn.TransformerEncoder(layer, blocks, enable_nested_tensor=False)
