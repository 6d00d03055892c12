"""Progress on stderr: a line per step, and bars for long loops when stderr is a terminal."""

import os
import sys

from tqdm import tqdm


def quiet() -> bool:
    return os.environ.get("WMPLAT_QUIET", "").lower() in {"1", "true", "yes"}


def status(message: str) -> None:
    if not quiet():
        print(message, file=sys.stderr, flush=True)


def bar(total: int, desc: str) -> tqdm:
    """A progress bar; silent when stderr is not a terminal (logs get `status` lines instead)."""
    return tqdm(total=total, desc=desc, file=sys.stderr, leave=False,
                disable=quiet() or not sys.stderr.isatty())
