"""The method `gpt` (Peebles et al. 2022, G.pt: "Learning to Learn with Generative Models of
Neural Network Checkpoints").

fit: scale the weights by one constant (0.538 / their std), draw pairs (θ_j, θ_k), k > j, of
one train run, permute each pair's hidden units, and train a transformer denoiser to predict θ_k
from its noisy version, θ_j, θ_k's loss and θ_j's loss (diffusion with an x0 target). sample:
from start checkpoints (the train runs' initialisations, or fresh ones), ask for the target
loss (0 by default: G.pt's one-step prompting) or ask again from each answer (recursive).
diagnostics: G.pt's prompt alignment, how closely the samples reach 20 asked losses.
"""

import copy
import math
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

import wmplat

from . import prompting
from .diffusion import Diffusion
from .network import Denoiser
from .pairs import Runs, permutation_index, permute
from .starts import cycled, fresh_inits, mlp_sizes
from .tokens import token_sizes

WEIGHT_STD_TARGET = 0.538     # G.pt's "openai" normaliser: weights x 0.538 / their std


class GPTConfig(BaseModel):
    """Defaults fit in a few minutes on one CPU thread; the README lists the paper's values."""

    model_config = ConfigDict(extra="forbid")
    condition: str = Field("avg_test_loss", min_length=1,
                           description="the recorded per-checkpoint value (model metadata) the "
                                       "model is conditioned on (G.pt's MNIST model: test loss)")
    target_loss: float = Field(0.0, description="the loss asked for when sampling")
    prompting: Literal["one_step", "recursive"] = Field(
        "one_step", description="one sample per start, or each sample the next start")
    recursions: int = Field(2, ge=1, description="prompts in turn under recursive prompting")
    init_source: Literal["train", "fresh"] = Field(
        "train", description="start from the train runs' first checkpoints, or from fresh "
                             "initialisations (fc{i} MLP zoos)")
    steps: int = Field(3000, ge=1, description="training steps")
    batch_size: int = Field(64, ge=1, description="checkpoint pairs per step")
    width: int = Field(128, ge=1, description="transformer width")
    layers: int = Field(2, ge=1, description="transformer blocks")
    heads: int = Field(4, ge=1, description="attention heads")
    chunk_size: int = Field(1000, ge=1, description="most values in one parameter token")
    frequencies: int = Field(128, ge=1, description="frequencies of the scalar embedding")
    max_freq_log2: float = Field(14.0, ge=0, description="log2 of the highest frequency")
    lr: float = Field(3e-3, gt=0, description="AdamW peak learning rate (cosine schedule)")
    warmup_steps: int = Field(100, ge=0, description="linear learning-rate warmup steps")
    weight_decay: float = Field(0.1, ge=0, description="AdamW weight decay (linear weights)")
    grad_clip: float = Field(0.75, ge=0, description="gradient norm clip (0: none)")
    ema: float = Field(0.995, ge=0, lt=1, description="EMA decay of the sampled weights (0: "
                                                      "sample the trained weights)")
    timesteps: int = Field(1000, ge=2, description="diffusion steps T")
    step_input: Literal["index", "fraction"] = Field(
        "fraction", description="the diffusion step as the network sees it: its index t "
                             "(G.pt) or t / T")
    sampling_steps: int | None = Field(100, ge=1, description="reverse steps when sampling, "
                                                              "evenly spaced (None: all T)")
    min_spacing: int = Field(1, ge=1, description="least k - j of a training pair")
    max_spacing: int | None = Field(None, ge=1, description="most k - j (default: the run)")
    augment: bool = Field(False, description="permute each pair's hidden units (the task's "
                                            "permutation groups)")
    sample_batch: int = Field(256, ge=1, description="samples denoised at once")
    prompt_alignment: bool = Field(True, description="measure prompt alignment (diagnostics)")
    alignment_starts: int = Field(5, ge=1, description="start checkpoints of prompt alignment")
    alignment_prompts: int = Field(20, ge=2, description="asked losses per start")

    @model_validator(mode="after")
    def _consistent(self):
        if self.width % self.heads:
            raise ValueError(f"heads ({self.heads}) must divide width ({self.width})")
        if self.sampling_steps is not None and self.sampling_steps > self.timesteps:
            raise ValueError(f"sampling_steps ({self.sampling_steps}) must not exceed "
                             f"timesteps ({self.timesteps})")
        if self.max_spacing is not None and self.max_spacing < self.min_spacing:
            raise ValueError(f"max_spacing ({self.max_spacing}) must not be below min_spacing "
                             f"({self.min_spacing})")
        if self.warmup_steps > self.steps:
            raise ValueError(f"warmup_steps ({self.warmup_steps}) must not exceed steps "
                             f"({self.steps}): set both, e.g. steps={self.steps} "
                             f"warmup_steps={self.steps // 10}")
        return self


def recorded(zoo, key: str) -> torch.Tensor:
    """[num_train_models] the value `key` of every train checkpoint's metadata."""
    records = zoo.train_models()
    missing = [m for m in records if key not in m.metadata]
    if missing:
        have = sorted({k for m in records for k in m.metadata})
        raise wmplat.ZooError(
            f"gpt: zoo {zoo.name!r} records no {key!r} for {len(missing)} of its "
            f"{len(records)} train checkpoints (model metadata: "
            f"{', '.join(have) if have else 'none'}); G.pt is conditioned on it: use a zoo "
            "that records it (mnist-gpt, or one imported with --format gpt-lmdb) or name a "
            "recorded value with --set condition=NAME")
    return torch.tensor([m.metadata[key] for m in records], dtype=torch.float32)


def learning_rate(step: int, config: GPTConfig) -> float:
    """Linear warmup from 0, then cosine decay to 0 (G.pt's schedule, in steps)."""
    cosine = 0.5 * config.lr * (1 + math.cos(math.pi * step / config.steps))
    return cosine * min(1.0, step / config.warmup_steps) if config.warmup_steps else cosine


class GPT(wmplat.Method):
    name = "gpt"
    Config = GPTConfig

    def fit(self, zoo: wmplat.TrainZoo, seed: int) -> None:
        c = self.config
        self.zoo = zoo
        self.losses = recorded(zoo, c.condition)
        self.runs = Runs.of(zoo.train_models())
        self.pair_runs = Runs.of(zoo.train_models(), min_length=2)
        if len(self.pair_runs) == 0:
            raise wmplat.ZooError(f"gpt: zoo {zoo.name!r} has no train run of two or more "
                                  "checkpoints; G.pt learns from pairs of checkpoints of a run")
        self.sizes = mlp_sizes(zoo.param_spec)
        if c.init_source == "fresh" and self.sizes is None:
            raise wmplat.ConfigError(
                f"gpt: init_source=fresh draws torch.nn.Linear's initialisation of an MLP whose "
                f"parameters are fc1.weight, fc1.bias, fc2.weight, ...; zoo {zoo.name!r} has "
                f"{[n for n, _ in zoo.param_spec]}; use --set init_source=train")
        weights = zoo.train_weights()
        self.scale = float(WEIGHT_STD_TARGET / weights.std())
        self.weights = weights * self.scale
        if c.init_source == "fresh" or c.prompting == "recursive":
            self._check_measurable(why=f"init_source={c.init_source}, prompting={c.prompting}")
        self.groups = zoo.task.permutation_groups if c.augment else []
        g = wmplat.random_generator(seed)
        with torch.random.fork_rng(devices=[]):   # module init draws from the global generator
            torch.manual_seed(seed)
            self.net = Denoiser(token_sizes(zoo.param_spec, c.chunk_size), c.width, c.layers,
                                c.heads, c.frequencies, c.max_freq_log2,
                                1.0 if c.step_input == "index" else 1 / c.timesteps)
        self.ema = copy.deepcopy(self.net).requires_grad_(False) if c.ema > 0 else self.net
        self.diffusion = Diffusion(c.timesteps)
        wmplat.status(f"gpt: {len(self.pair_runs)} train runs, {len(self.weights)} checkpoints "
                      f"of {zoo.num_params} parameters in {len(self.net.sizes)} tokens, "
                      f"conditioned on {c.condition}; weights x {self.scale:.4g}; "
                      f"{'permutation augmentation' if self.groups else 'no augmentation'}")
        self.train_loss = self._train(g)
        wmplat.status(f"gpt: final training loss {self.train_loss:.4g}")

    def _measurable(self) -> list[str]:
        """What the task measures of new weights (tried on one train checkpoint)."""
        return sorted(self.zoo.task.model_metadata(self.weights[:1] / self.scale))

    def _check_measurable(self, why: str) -> None:
        values = self._measurable()
        if self.config.condition not in values:
            raise wmplat.ConfigError(
                f"gpt: {why} needs task {self.zoo.task.name!r} to measure "
                f"{self.config.condition!r} of new weights (its model_metadata gives "
                f"{values or 'nothing'}); use --set init_source=train "
                "prompting=one_step")

    def _train(self, g: torch.Generator) -> float:
        c = self.config
        optimizer = torch.optim.AdamW(self.net.parameter_groups(c.weight_decay), lr=c.lr,
                                      betas=(0.9, 0.999))
        self.net.train()
        tail = []
        with wmplat.progress_bar(c.steps, "gpt training", mininterval=1.0) as progress:
            for step in range(c.steps):
                for group in optimizer.param_groups:
                    group["lr"] = learning_rate(step, c)
                loss = self._pair_loss(g)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if c.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(self.net.parameters(), c.grad_clip)
                optimizer.step()
                if self.ema is not self.net:
                    with torch.no_grad():
                        for avg, new in zip(self.ema.parameters(), self.net.parameters(),
                                            strict=True):
                            avg.lerp_(new, 1 - c.ema)
                if step >= c.steps - max(1, c.steps // 10):
                    tail.append(loss.item())
                progress.update()
                if step % 100 == 0:
                    progress.set_postfix(loss=f"{loss.item():.4g}", refresh=False)
        self.net.eval()
        return sum(tail) / len(tail)

    def _pair_loss(self, g: torch.Generator) -> torch.Tensor:
        c = self.config
        j, k = self.pair_runs.draw_pairs(c.batch_size, g, c.min_spacing, c.max_spacing)
        start, target = self.weights[j], self.weights[k]
        if self.groups:
            index = permutation_index(self.zoo.param_spec, self.groups, c.batch_size, g)
            start, target = permute(start, index), permute(target, index)
        start_loss, target_loss = self.losses[j], self.losses[k]
        return self.diffusion.training_loss(
            lambda x_t, t: self.net(x_t, t, start, target_loss, start_loss), target, g)

    # --- sampling -------------------------------------------------------------------------

    def _generate(self, start: torch.Tensor, start_loss: torch.Tensor, target: torch.Tensor,
                  g: torch.Generator) -> torch.Tensor:
        """One-step prompting of normalised starts [n, P]: normalised samples [n, P]."""
        c = self.config
        steps = c.sampling_steps or c.timesteps
        out = []
        with torch.no_grad(), wmplat.progress_bar(
                steps * -(-len(start) // c.sample_batch), "gpt sampling") as progress:
            for s in range(0, len(start), c.sample_batch):
                x0, l0, lt = (v[s:s + c.sample_batch] for v in (start, start_loss, target))
                out.append(self.diffusion.sample(
                    lambda x_t, t, x0=x0, l0=l0, lt=lt: self.ema(x_t, t, x0, lt, l0),
                    tuple(x0.shape), steps, g, progress.update))
        return torch.cat(out)

    def _measure(self, normalised: torch.Tensor) -> torch.Tensor:
        values = self.zoo.task.model_metadata(normalised / self.scale)
        return values[self.config.condition].float()

    def _starts(self, n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """n normalised start checkpoints and their losses."""
        if self.config.init_source == "fresh":
            start = fresh_inits(self.zoo, self.sizes, n, g) * self.scale
            return start, self._measure(start)
        rows = cycled(self.runs.first(), n, g)
        return self.weights[rows], self.losses[rows]

    def _prompt(self, start: torch.Tensor, start_loss: torch.Tensor, target: torch.Tensor,
                g: torch.Generator) -> torch.Tensor:
        def generate(s, sl, t):
            return self._generate(s, sl, t, g)
        if self.config.prompting == "recursive":
            return prompting.recursive(generate, self._measure, start, start_loss, target,
                                       self.config.recursions)
        return generate(start, start_loss, target)

    def sample(self, n: int, seed: int) -> torch.Tensor:
        g = wmplat.random_generator(seed)
        start, start_loss = self._starts(n, g)
        target = torch.full((n,), float(self.config.target_loss))
        return (self._prompt(start, start_loss, target, g) / self.scale).contiguous()

    # --- diagnostics ----------------------------------------------------------------------

    def diagnostics(self, seed: int) -> wmplat.Diagnostics | None:
        """G.pt's prompt alignment: R² of achieved against asked loss (prompting.py)."""
        c = self.config
        if not c.prompt_alignment:
            return None
        key = c.condition
        if key not in self._measurable():
            wmplat.status(f"gpt: prompt alignment skipped: task {self.zoo.task.name!r} does "
                          f"not measure {key!r} of new weights (model_metadata)")
            return None
        g = wmplat.random_generator(seed)
        start, start_loss = self._starts(c.alignment_starts, g)
        asked = prompting.asked_losses(start_loss, c.alignment_prompts)
        # one-step prompts whatever `prompting` says, as G.pt measures it
        samples = self._generate(start.repeat_interleave(c.alignment_prompts, dim=0),
                                 start_loss.repeat_interleave(c.alignment_prompts),
                                 asked.reshape(-1), g)
        achieved = self._measure(samples).reshape(asked.shape)
        r2 = prompting.alignment_r2(asked, achieved)
        figure = prompting.alignment_figure(asked, achieved, r2, key)
        caption = (f"G.pt prompt alignment: the {key} samples achieve against the {key} "
                   f"asked for, {c.alignment_prompts} one-step prompts from 0 to 0.9 x the "
                   f"start's from each of {c.alignment_starts} start checkpoints "
                   f"({c.init_source}), one line per start; dashed: the identity. R² (against "
                   f"the identity, mean over starts) = {r2:.3f}.")
        return wmplat.Diagnostics(
            summary={"prompt_alignment_r2": r2,
                     "prompt_alignment_mae": float((achieved - asked).abs().mean())},
            figures=[wmplat.Figure.from_matplotlib("prompt_alignment", caption, figure)])
