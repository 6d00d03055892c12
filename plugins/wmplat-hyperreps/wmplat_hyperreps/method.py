"""Hyper-Representations (Schürholt, Knyazev, Giró-i-Nieto & Borth, NeurIPS 2022) as a
wmplat method: a transformer autoencoder over per-unit weight tokens, trained with a
contrastive plus layer-normalized reconstruction loss on augmented views, then sampled by a
per-dimension KDE over the latents of the best training checkpoints and decoded.
"""

import time

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

import wmplat

from .augment import add_noise, erase, permute, random_permutations
from .autoencoder import TokenAutoencoder
from .errors import config_error
from .losses import layer_normalized_mse, layer_variance, nt_xent
from .sampling import LatentKDE, top_share
from .tokens import Tokenizer


class HyperRepsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(20, ge=1, description="passes over the training checkpoints")
    batch_size: int = Field(64, ge=2, description="models per step (two views each)")
    lr: float = Field(3e-3, gt=0, description="Adam learning rate")
    weight_decay: float = Field(1e-5, ge=0)
    d_model: int = Field(64, ge=1, description="token embedding width")
    heads: int = Field(4, ge=1, description="attention heads")
    blocks: int = Field(2, ge=1, description="transformer blocks in encoder and in decoder")
    ff: int = Field(128, ge=1, description="hidden width of each block's MLP")
    latent: int = Field(256, ge=1, description="latent (hyper-representation) size")
    projection: int = Field(32, ge=1, description="output of the contrastive head")
    dropout: float = Field(0.1, ge=0, lt=1)
    gamma: float = Field(0.05, ge=0, le=1, description="loss = gamma*contrast + (1-gamma)*recon")
    temperature: float = Field(0.1, gt=0, description="NT-Xent temperature")
    permute: bool = Field(False, description="permutation augmentation (paper: on; see README)")
    noise: float = Field(0.05, ge=0, description="augmentation noise, normalized weight units")
    erase_p: float = Field(0.5, ge=0, le=1, description="probability of erasing a block")
    erase_min: float = Field(0.02, gt=0, le=1, description="smallest share of tokens erased")
    erase_max: float = Field(0.33, gt=0, le=1, description="largest share of tokens erased")
    top: float = Field(0.3, gt=0, le=1, description="share of checkpoints the KDE is fitted on")
    bandwidth: float = Field(0.002, ge=0, description="KDE bandwidth, times each latent std")
    couple_dims: bool = Field(False, description="one KDE draw for all dims (paper's code)")

    @model_validator(mode="after")
    def _check(self):
        if self.d_model % self.heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by heads "
                             f"({self.heads})")
        if self.erase_min > self.erase_max:
            raise ValueError(f"erase_min ({self.erase_min}) exceeds erase_max "
                             f"({self.erase_max})")
        return self


class HyperReps(wmplat.Method):
    """Hyper-Representations: transformer autoencoder + KDE sampling on the best 30%."""

    name = "hyperreps"
    Config = HyperRepsConfig

    def fit(self, zoo: wmplat.Zoo, seed: int) -> None:
        c = self.config
        weights = zoo.train_weights()
        quality = torch.tensor([m.quality for m in zoo.train_models()], dtype=torch.float64)
        self.zoo = zoo
        self.groups = _checked_groups(zoo) if c.permute else []
        self.tokenizer = Tokenizer(zoo.param_spec)
        self.mean, self.std = _tensor_stats(zoo, weights)
        x = (weights - self.mean) / self.std
        tokens = self.tokenizer.tokenize(x)
        self.layer_var = layer_variance(tokens, self.tokenizer.mask, self.tokenizer.layer,
                                        len(self.tokenizer.layer_names))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)          # initialisation and dropout; restored afterwards
            self.model = TokenAutoencoder(
                self.tokenizer.layer, self.tokenizer.width, c.d_model, c.heads, c.blocks,
                c.ff, c.latent, c.projection, c.dropout)
            self.history = self._train(x, wmplat.random_generator(seed))
        self.model.eval()
        with torch.no_grad():
            latents = self.model.encode(tokens)
        self.top = top_share(quality, c.top)
        self.kde = LatentKDE(latents[self.top], c.bandwidth, c.couple_dims)

    def sample(self, n: int, seed: int) -> torch.Tensor:
        z = self.kde.sample(n, wmplat.random_generator(seed))
        with torch.no_grad():
            flat = torch.cat([self.tokenizer.detokenize(self.model.decode(chunk))
                              for chunk in z.split(256)])
        return flat * self.std + self.mean

    def views(self, x: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """An augmented view of normalized weights [n, P] as tokens, and the target its
        reconstruction is scored against: the same permuted model, without noise or erasing."""
        c = self.config
        if self.groups:
            perms = random_permutations(self.groups, len(x), g)
            x = self.zoo.flatten(permute(self.zoo.unflatten(x), self.groups, perms))
        target = self.tokenizer.tokenize(x)
        view = self.tokenizer.tokenize(add_noise(x, c.noise, g))
        return erase(view, c.erase_p, (c.erase_min, c.erase_max), g), target

    def _train(self, x: torch.Tensor, g: torch.Generator) -> list[dict[str, float]]:
        c = self.config
        optimizer = torch.optim.Adam(self.model.parameters(), lr=c.lr,
                                     weight_decay=c.weight_decay)
        history, started = [], time.monotonic()
        self.model.train()
        for epoch in range(1, c.epochs + 1):
            totals, batches = {"loss": 0.0, "recon": 0.0, "contrast": 0.0}, 0
            order = torch.randperm(len(x), generator=g)
            for idx in order.split(c.batch_size):
                if len(idx) < 2:        # the contrastive loss needs a negative
                    continue
                view_a, target_a = self.views(x[idx], g)
                view_b, target_b = self.views(x[idx], g)
                z_a, y_a = self.model(view_a)
                z_b, y_b = self.model(view_b)
                recon = (self._recon(y_a, target_a) + self._recon(y_b, target_b)) / 2
                contrast = nt_xent(self.model.head(z_a), self.model.head(z_b), c.temperature)
                loss = c.gamma * contrast + (1 - c.gamma) * recon
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                for key, value in (("loss", loss), ("recon", recon), ("contrast", contrast)):
                    totals[key] += float(value.detach())
                batches += 1
            history.append({k: v / max(batches, 1) for k, v in totals.items()})
            if epoch == 1 or epoch == c.epochs or epoch % max(1, c.epochs // 10) == 0:
                h = history[-1]
                wmplat.status(f"hyperreps: epoch {epoch}/{c.epochs}  loss {h['loss']:.4f}  "
                       f"recon {h['recon']:.4f}  contrast {h['contrast']:.4f}  "
                       f"({time.monotonic() - started:.0f}s)")
        return history

    def _recon(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        tok = self.tokenizer
        return layer_normalized_mse(pred, target, tok.mask, tok.layer, self.layer_var)


def _tensor_stats(zoo: wmplat.Zoo, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per parameter tensor, the mean and std of its values over the train split, broadcast
    to flat vectors [P]."""
    params = zoo.unflatten(weights)
    mean = {k: v.mean().expand(v.shape[1:]) for k, v in params.items()}
    std = {k: v.std().clamp(min=1e-8).expand(v.shape[1:]) for k, v in params.items()}
    return (zoo.flatten({k: v.unsqueeze(0) for k, v in mean.items()})[0],
            zoo.flatten({k: v.unsqueeze(0) for k, v in std.items()})[0])


def _checked_groups(zoo: wmplat.Zoo) -> list:
    shapes = dict(zoo.param_spec)
    groups = list(zoo.task.permutation_groups)
    for group in groups:
        for entry in group.axes:
            if len(entry) != 2:
                raise config_error(
                    f"permutation group {group.name!r} of task {zoo.task.name!r} moves "
                    f"{entry[0]!r} in blocks (a layer after a Flatten); hyperreps tokenises "
                    "one hidden unit per token and takes only (parameter, axis) groups")
            name, axis = entry
            if name not in shapes or axis >= len(shapes[name]) \
                    or shapes[name][axis] != group.size:
                raise config_error(f"permutation group {group.name!r} of task "
                                   f"{zoo.task.name!r} does not fit parameter {name!r}")
    return groups
