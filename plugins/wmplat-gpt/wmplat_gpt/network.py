"""G.pt's denoiser: a transformer over the tokens of two parameter vectors and four scalars.

Input sequence: the noisy target's tokens, the start checkpoint's tokens, then the diffusion
step t, the loss change (target - start), the target loss and the start loss. Each parameter
token has a linear encoder of its own (no bias) and each scalar goes through a frequency
embedding and its own encoder; the embeddings are layer-normalised, given learned positions and
run through an unmasked pre-LayerNorm transformer (minGPT's blocks). A zero-initialised linear
decoder per target token reads the output at that token's position, and the prediction of the
clean target is the start checkpoint plus the decoders' output: untrained, it is the start.
"""

import torch
from torch import nn
from torch.nn import functional as F

SCALARS = 4          # t, loss change, target loss, start loss


class FrequencyEmbedding(nn.Module):
    """A scalar x as [sin(f x) for each f, cos(f x) for each f, x], f = 2^linspace(0, max_log2,
    frequencies): 2 * frequencies + 1 features."""

    def __init__(self, frequencies: int, max_log2: float):
        super().__init__()
        self.register_buffer("frequencies",
                             2.0 ** torch.linspace(0, max_log2, frequencies, dtype=torch.float64)
                             .float())

    @property
    def size(self) -> int:
        return 2 * len(self.frequencies) + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[n] -> [n, 2 * frequencies + 1]."""
        x = x.float().unsqueeze(1)
        angles = x * self.frequencies
        return torch.cat([angles.sin(), angles.cos(), x], dim=1)


class Block(nn.Module):
    """Pre-LayerNorm: x + attention(LN(x)), then x + MLP(LN(x)), MLP 4x wide with GELU."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(),
                                 nn.Linear(4 * width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, length, width = x.shape
        q, k, v = (part.view(n, length, self.heads, width // self.heads).transpose(1, 2)
                   for part in self.qkv(self.ln1(x)).chunk(3, dim=2))
        attended = F.scaled_dot_product_attention(q, k, v)          # unmasked
        x = x + self.proj(attended.transpose(1, 2).reshape(n, length, width))
        return x + self.mlp(self.ln2(x))


class Denoiser(nn.Module):
    """x0(x_t, t | start, target loss, start loss) for parameter vectors cut into tokens of
    `sizes` values (tokens.token_sizes)."""

    def __init__(self, sizes: list[int], width: int, layers: int, heads: int,
                 frequencies: int = 128, max_freq_log2: float = 14, step_scale: float = 1.0):
        super().__init__()
        self.sizes = list(sizes)
        self.step_scale = step_scale      # the diffusion step enters the embedding as t x this
        self.embed_scalar = FrequencyEmbedding(frequencies, max_freq_log2)
        inputs = self.sizes * 2 + [self.embed_scalar.size] * SCALARS
        self.encoders = nn.ModuleList(nn.Linear(size, width, bias=False) for size in inputs)
        self.ln_in = nn.LayerNorm(width)
        self.positions = nn.Parameter(torch.zeros(1, len(inputs), width))
        self.blocks = nn.Sequential(*(Block(width, heads) for _ in range(layers)))
        self.ln_out = nn.LayerNorm(width)
        self.decoders = nn.ModuleList(nn.Linear(width, size, bias=False) for size in self.sizes)
        self.apply(_init_weights)
        for decoder in self.decoders:
            nn.init.zeros_(decoder.weight)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, start: torch.Tensor,
                target_loss: torch.Tensor, start_loss: torch.Tensor) -> torch.Tensor:
        """x_t, start [n, num_params]; t, target_loss, start_loss [n] -> predicted x0 [n, P]."""
        scalars = [t * self.step_scale, target_loss - start_loss, target_loss, start_loss]
        pieces = (list(torch.split(x_t, self.sizes, dim=1))
                  + list(torch.split(start, self.sizes, dim=1))
                  + [self.embed_scalar(s) for s in scalars])
        h = torch.stack([encode(piece) for encode, piece in zip(self.encoders, pieces,
                                                                 strict=True)], dim=1)
        h = self.blocks(self.ln_in(h) + self.positions)
        h = self.ln_out(h)
        out = torch.cat([decode(h[:, i]) for i, decode in enumerate(self.decoders)], dim=1)
        return start + out

    def parameter_groups(self, weight_decay: float) -> list[dict]:
        """AdamW groups as G.pt makes them: decay on the weights of linear layers only (not on
        biases, LayerNorms or positions)."""
        decay, rest = [], []
        for module in self.modules():
            for name, param in module.named_parameters(recurse=False):
                is_linear_weight = isinstance(module, nn.Linear) and name == "weight"
                (decay if is_linear_weight else rest).append(param)
        return [{"params": decay, "weight_decay": weight_decay},
                {"params": rest, "weight_decay": 0.0}]


def _init_weights(module: nn.Module) -> None:
    """minGPT's: linear weights N(0, 0.02), biases 0 (LayerNorms keep 1 and 0)."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
