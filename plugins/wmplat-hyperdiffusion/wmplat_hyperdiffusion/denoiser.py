"""The x0-predicting network: G.pt's transformer as HyperDiffusion uses it.

Each weight token has its own linear map (no bias) to the model width, and the timestep its
token: sin and cos of t at 128 frequencies 2^0 ... 2^20, and t itself (257 values), mapped the
same way. The tokens, LayerNorm-ed, plus a learned position embedding, go through pre-LayerNorm
transformer blocks without a mask (GELU MLP of 4 x width, no dropout), a final LayerNorm, and
each weight token's own linear map (no bias) back to its values; the timestep token's output is
dropped. Linear weights start N(0, 0.02²), biases 0, as in G.pt.
"""

import torch
from torch import nn

FREQUENCIES, MAX_FREQUENCY_LOG2 = 128, 20


def timestep_features(t: torch.Tensor) -> torch.Tensor:
    """G.pt's scalar embedding of the steps t [n]: [n, 2 * 128 + 1]. Computed in float64: the
    highest frequencies times t exceed float32's resolution of an angle."""
    freqs = 2.0 ** torch.linspace(0, MAX_FREQUENCY_LOG2, FREQUENCIES, dtype=torch.float64)
    angles = t.double().unsqueeze(1) * freqs
    return torch.cat([angles.sin(), angles.cos(), t.double().unsqueeze(1)], dim=1).float()


class Denoiser(nn.Module):
    def __init__(self, sizes: list[int], width: int, layers: int, heads: int):
        super().__init__()
        self.sizes = list(sizes)
        self.encoders = nn.ModuleList(nn.Linear(size, width, bias=False) for size in sizes)
        self.time_encoder = nn.Linear(2 * FREQUENCIES + 1, width, bias=False)
        self.ln_in = nn.LayerNorm(width)
        self.position = nn.Parameter(torch.zeros(1, len(sizes) + 1, width))
        block = nn.TransformerEncoderLayer(width, heads, dim_feedforward=4 * width, dropout=0.0,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(block, layers, norm=nn.LayerNorm(width),
                                            enable_nested_tensor=False)
        self.decoders = nn.ModuleList(nn.Linear(width, size, bias=False) for size in sizes)
        self.apply(_init_weights)

    def forward(self, tokens: list[torch.Tensor], t: torch.Tensor) -> list[torch.Tensor]:
        """Noisy weight tokens (one [n, size] per token) at steps t [n] -> predicted clean
        tokens, the same shapes."""
        h = [encode(token) for encode, token in zip(self.encoders, tokens, strict=True)]
        h.append(self.time_encoder(timestep_features(t)))
        h = self.blocks(self.ln_in(torch.stack(h, dim=1)) + self.position)
        return [decode(h[:, i]) for i, decode in enumerate(self.decoders)]


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.MultiheadAttention):      # its q, k, v maps are one matrix
        nn.init.normal_(module.in_proj_weight, std=0.02)
        nn.init.zeros_(module.in_proj_bias)
