"""Progress lines on stderr, silenced by WMPLAT_QUIET=1 like wmplat's own."""

import os
import sys


def status(message: str) -> None:
    if os.environ.get("WMPLAT_QUIET", "").lower() not in {"1", "true", "yes"}:
        print(message, file=sys.stderr, flush=True)
