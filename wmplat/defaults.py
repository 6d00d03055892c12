"""Defaults the command line and the library share (importing this module costs nothing)."""

from pathlib import Path

DEFAULT_ZOO = "digits-mlp"                  # the embedded default zoo, built locally
DEFAULT_RESULTS_DIR = Path("wmplat-results")
DEFAULT_SAMPLES = 100
DEFAULT_SEED = 0
