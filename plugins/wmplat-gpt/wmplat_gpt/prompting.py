"""Asking a fitted G.pt for checkpoints, and measuring how well it follows the asked loss.

One-step prompting: one sample from p(θ | start θ, start loss, target loss). Recursive
prompting (G.pt's `recursive_prompting`): the sample becomes the next start, its loss measured
by the task, and the same target asked again, `recursions` times in all.

Prompt alignment (G.pt's "prompt alignment score"): from each start checkpoint, `prompts` target
losses evenly spaced from 0 to 0.9 x the start's loss; the loss each sample achieves is measured
by the task; per start, R² = 1 - Σ (achieved - asked)² / Σ (asked - mean asked)², the
coefficient of determination of the achieved losses against the identity line; the score is the
mean over starts (G.pt's `r_squared`). 1 means every sample reaches its asked loss exactly; 0,
no better than answering every prompt with their mean; it is negative when worse.
"""

from collections.abc import Callable

import torch

Generate = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def recursive(generate: Generate, measure: Callable[[torch.Tensor], torch.Tensor],
              start: torch.Tensor, start_loss: torch.Tensor, target: torch.Tensor,
              recursions: int) -> torch.Tensor:
    """`recursions` one-step prompts in turn, each from the last sample and its measured loss."""
    x = generate(start, start_loss, target)
    for _ in range(recursions - 1):
        x = generate(x, measure(x), target)
    return x


def asked_losses(start_loss: torch.Tensor, prompts: int, top: float = 0.9) -> torch.Tensor:
    """[m] start losses -> [m, prompts] target losses from 0 to top x each start's loss."""
    fractions = torch.linspace(0, top, prompts, dtype=torch.float64)
    return (start_loss.double().unsqueeze(1) * fractions).float()


def alignment_r2(asked: torch.Tensor, achieved: torch.Tensor) -> float:
    """Mean over rows of 1 - Σ (achieved - asked)² / Σ (asked - mean asked)² ([m, prompts])."""
    asked, achieved = asked.double(), achieved.double()
    spread = (asked - asked.mean(dim=1, keepdim=True)).pow(2).sum(dim=1)
    error = (achieved - asked).pow(2).sum(dim=1)
    return float((1 - error / spread.clamp_min(1e-12)).mean())


def alignment_figure(asked: torch.Tensor, achieved: torch.Tensor, r2: float, key: str):
    """Achieved against asked loss, one line per start checkpoint, and the identity line."""
    from matplotlib.figure import Figure  # no pyplot: no display backend needed

    fig = Figure(figsize=(4.8, 4.2))
    ax = fig.subplots()
    for row_asked, row_achieved in zip(asked.tolist(), achieved.tolist(), strict=True):
        ax.plot(row_asked, row_achieved, marker="o", markersize=2.5, linewidth=1, alpha=0.8)
    top = float(max(asked.max(), achieved.max()))
    ax.plot([0, top], [0, top], color="black", linestyle="--", linewidth=1, label="identity")
    ax.set_xlabel(f"asked {key}")
    ax.set_ylabel(f"achieved {key}")
    ax.set_title(f"G.pt prompt alignment, R² = {r2:.3f}")
    ax.legend(loc="upper left")
    return fig
