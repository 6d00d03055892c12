"""$WMPLAT_HOME: where wmplat caches zoos and data (default ~/.cache/wmplat)."""

import os
from pathlib import Path


def home() -> Path:
    return Path(os.environ.get("WMPLAT_HOME") or Path.home() / ".cache" / "wmplat")
