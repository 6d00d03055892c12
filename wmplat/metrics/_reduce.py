"""Shared helpers for the built-in metrics."""

import torch

# Bytes of float64 scratch a metric may hold per chunk of samples.
MEMORY_BUDGET = 256 * 2**20


def median(values: torch.Tensor) -> float | None:
    """The median (the mean of the middle two for an even count); None for no values."""
    return float(values.double().quantile(0.5)) if len(values) else None


def chunk_size(columns: int, bytes_per_value: int = 8) -> int:
    return max(1, MEMORY_BUDGET // max(1, columns * bytes_per_value))
