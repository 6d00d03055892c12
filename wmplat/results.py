"""Stored results: one folder per result, `result.json` (the leaderboard row) beside
`per_sample.safetensors` (every sample's metric values, read only by figures and analysis).

`result.json` is written last, so its presence means the result is complete.
"""

import hashlib
import json
from pathlib import Path
from typing import Any

from .atomic import write_atomic, write_text_atomic
from .errors import ResultError
from .schema import Result, check_schema_version, parse_model

RESULT = "result.json"
PER_SAMPLE = "per_sample.safetensors"
PREVIEW = "preview.safetensors"


def config_hash(config: dict[str, Any]) -> str:
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


LABEL_ARGS_MAX = 48
LABEL_VALUE_MAX = 16


def config_label(name: str, config: dict[str, Any]) -> str:
    """`noise(sigma=0.1)`; a long list shows its length (`params=[4 items]`), and a config
    still too long to read in a table is named by its hash (the full config is in the
    result)."""
    args = ", ".join(f"{k}={_short(v)}" for k, v in config.items())
    if not args:
        return name
    return f"{name}({args})" if len(args) <= LABEL_ARGS_MAX else \
        f"{name}(config {config_hash(config)})"


def _short(value: Any) -> str:
    text = str(value)
    if len(text) > LABEL_VALUE_MAX and isinstance(value, list | tuple | dict):
        return f"[{len(value)} items]"
    return text


def result_folder(results_dir: Path, zoo: str, method: str, config_hash: str,
                  seed: int | None, n_samples: int) -> Path:
    """`results_dir/zoo/method/run`, the names as they are: every source of a zoo or method
    name validates it (wmplat/names.py), so two names never share a folder."""
    run = "reference" if seed is None else f"{config_hash}-seed{seed}-n{n_samples}"
    folder = results_dir / zoo / method / run
    if not _one_folder_each(folder, results_dir, 3):
        raise ResultError(f"zoo {zoo!r}, method {method!r} and run {run!r} do not make a "
                          f"folder inside {results_dir}; each must be a single name")
    return folder


def _one_folder_each(path: Path, root: Path, depth: int) -> bool:
    """Whether `path` is `root` followed by `depth` plain components (none '.', '..' or '')."""
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return False
    return len(parts) == depth and not {".", ".."} & set(parts)


def write_result(folder: Path, result: Result, per_sample: dict,
                 preview: dict | None = None) -> None:
    from safetensors.torch import save_file

    for name, tensors in ((PER_SAMPLE, per_sample), (PREVIEW, preview or {})):
        tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
        if tensors:
            write_atomic(folder / name, lambda tmp, t=tensors: save_file(t, tmp))
    write_text_atomic(folder / RESULT, result.model_dump_json(indent=2) + "\n")


def read_result(path: Path) -> Result:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ResultError(f"{path}: cannot read result ({exc})") from None
    check_schema_version(data, str(path), ResultError)
    return parse_model(Result, data, str(path), ResultError)


def read_per_sample(folder: Path) -> dict:
    """{metric name: tensor [n_samples]} of a stored result."""
    from safetensors.torch import load_file

    return load_file(folder / PER_SAMPLE)


def read_preview(folder: Path) -> dict:
    """The heatmap extract of a stored result (see wmplat.preview); {} if there is none."""
    from safetensors.torch import load_file

    return load_file(folder / PREVIEW) if (folder / PREVIEW).is_file() else {}


def read_results(results_dir: Path, zoo: str | None = None) -> list[Result]:
    """Every result under `results_dir` (optionally of one zoo), validated."""
    if not results_dir.is_dir():
        return []
    results = [read_result(p) for p in sorted(results_dir.rglob(RESULT))]
    return [r for r in results if zoo is None or r.zoo == zoo]


def read_results_with_folders(results_dir: Path,
                              zoo: str | None = None) -> list[tuple[Result, Path]]:
    """Like `read_results`, with the folder each result was read from (where its
    per-sample values and preview are)."""
    if not results_dir.is_dir():
        return []
    pairs = [(read_result(p), p.parent) for p in sorted(results_dir.rglob(RESULT))]
    return [(r, folder) for r, folder in pairs if zoo is None or r.zoo == zoo]
