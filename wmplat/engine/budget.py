"""The memory budget that sizes every chunk of work over (sample, checkpoint) pairs.

Work over all (sample, checkpoint) pairs is done a block of rows at a time; a block is as many
rows as fit the budget, so memory stays bounded whatever the zoo's size (docs/engine.md).
"""

import os
from collections.abc import Iterator

from ..errors import ConfigError

# Bytes of scratch one block may hold, unless WMPLAT_MEMORY_BUDGET_MB says otherwise.
MEMORY_BUDGET = 256 * 2**20
BUDGET_ENV = "WMPLAT_MEMORY_BUDGET_MB"
# Bytes a streaming step (many small operations in a row) aims at: past that, larger steps only
# fall out of cache and slow down (measured in docs/engine.md).
WORKING_SET = 8 * 2**20


def memory_budget() -> int:
    """The budget in bytes: $WMPLAT_MEMORY_BUDGET_MB (megabytes, fractions allowed) or 256 MB."""
    return megabytes_setting(BUDGET_ENV, MEMORY_BUDGET)


def megabytes_setting(variable: str, default: int) -> int:
    """Bytes from the environment variable `variable`, in megabytes (fractions allowed), or
    `default` bytes when it is unset."""
    value = os.environ.get(variable, "").strip()
    if not value:
        return default
    try:
        megabytes = float(value)
    except ValueError:
        megabytes = float("nan")
    if not 0 < megabytes < float("inf"):
        raise ConfigError(f"{variable} must be a positive number of megabytes, got {value!r}")
    return max(1, int(megabytes * 2**20))


def chunk_size(columns: int, bytes_per_value: int = 8) -> int:
    """How many rows of `columns` values, each costing `bytes_per_value` bytes, fit the budget."""
    return max(1, memory_budget() // max(1, columns * bytes_per_value))


def step_size(bytes_per_row: int) -> int:
    """How many rows of a streaming step fit the working set (and the budget, if smaller)."""
    return max(1, min(memory_budget(), WORKING_SET) // max(1, bytes_per_row))


def blocks(rows: int, size: int) -> Iterator[tuple[int, int]]:
    """(start, stop) of consecutive blocks of at most `size` rows."""
    for start in range(0, rows, size):
        yield start, min(start + size, rows)
