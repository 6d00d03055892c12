"""Defaults the command line and the library share (importing this module costs nothing)."""

from pathlib import Path

DEFAULT_ZOO = "digits-mlp"                  # the embedded default zoo, built locally
DEFAULT_RESULTS_DIR = Path("wmplat-results")
DEFAULT_SAMPLES = 100
DEFAULT_SEED = 0
MAX_SAMPLES = 100_000
MAX_SEED = 2**32 - 1                        # numpy's legacy seeding takes no more
SAMPLE_MEMORY = 8 * 2**30                   # bytes the samples may take, as float32
SAMPLE_MEMORY_ENV = "WMPLAT_SAMPLE_MEMORY_MB"
