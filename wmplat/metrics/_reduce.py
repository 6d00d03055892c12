"""Reductions the built-in metrics share."""

import torch


def median(values: torch.Tensor) -> float | None:
    """The median (the mean of the middle two for an even count); None for no values."""
    return float(values.double().quantile(0.5)) if len(values) else None
