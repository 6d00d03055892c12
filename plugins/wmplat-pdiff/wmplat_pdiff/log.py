"""Progress on stderr: plain lines, and tqdm bars for training loops; WMPLAT_QUIET=1 hides both,
as it hides wmplat's own progress."""

import os
import sys

from tqdm import tqdm


def quiet() -> bool:
    return os.environ.get("WMPLAT_QUIET", "").lower() in {"1", "true", "yes"}


def say(message: str) -> None:
    if not quiet():
        print(message, file=sys.stderr, flush=True)


def bar(total: int, desc: str) -> tqdm:
    return tqdm(total=total, desc=desc, file=sys.stderr, leave=False, mininterval=1.0,
                disable=quiet())
