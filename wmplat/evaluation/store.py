"""Stored results: one folder per result, `result.json` (the leaderboard row) beside
`per_sample.safetensors` (every sample's metric values, read only by figures and analysis),
`preview.safetensors` (the heatmap's extract) and, when plugins drew any, `figures.json` with
`figures/NAME.png` (wmplat/evaluation/plugin_figures.py).

A row's folder is one unit: written whole into a temporary folder and moved into place at once,
and read back whole (`read_row`) and checked before anything reuses it.
"""

import errno
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..engine.atomic import atomic_folder, folder_lock
from ..errors import ResultError
from ..schema import Result, read_json_model
from .plugin_figures import (
    FIGURES_DIR,
    FIGURES_INDEX,
    RowFigure,
    is_figures_folder,
    read_figures,
    write_figures,
)

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


def zoo_key(zoo: str, revision: str | None) -> str:
    """The folder of a zoo's results: its name and revision, so that two revisions of one zoo
    never share a row (the same key as on the Hub)."""
    return f"{zoo}@{(revision or 'unversioned')[:16]}"


ROW_FILES = (RESULT, PER_SAMPLE, PREVIEW, FIGURES_INDEX)


def is_row_folder(folder: Path) -> bool:
    """Whether `folder` holds nothing but a row's files, so that wmplat may replace it."""
    return folder.is_dir() and not folder.is_symlink() and all(
        (p.name in ROW_FILES and p.is_file() and not p.is_symlink())
        or (p.name == FIGURES_DIR and is_figures_folder(p)) for p in folder.iterdir())


def write_result(folder: Path, result: Result, per_sample: dict,
                 preview: dict | None = None, figures: Sequence[RowFigure] = ()) -> None:
    """Write a row's files into a temporary folder and move it onto `folder` at once."""
    with folder_lock(folder):
        write_row(folder, result, per_sample, preview, figures)


def write_row(folder: Path, result: Result, per_sample: dict, preview: dict | None = None,
              figures: Sequence[RowFigure] = ()) -> None:
    """`write_result` for a caller that holds the row's lock (`wmplat.engine.atomic.try_lock`)."""
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    try:
        with atomic_folder(folder, owned=is_row_folder) as tmp:
            for name, tensors in ((PER_SAMPLE, per_sample), (PREVIEW, preview or {})):
                tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
                if tensors:
                    save_file(tensors, tmp / name)
            write_figures(tmp, list(figures))
            (tmp / RESULT).write_text(result.model_dump_json(indent=2) + "\n", encoding="utf-8")
    except (OSError, SafetensorError) as exc:
        raise ResultError(f"cannot write the result {folder}: {_reason(exc)}; free space or "
                          "choose another --results-dir (nothing was written for this row)") \
            from None


def _reason(exc: Exception) -> str:
    """The operating system's words for a failed write (safetensors wraps them in its own)."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return re.sub(r"^.*I/O error: | \(os error \d+\)$", "", str(exc))


def recover_row(folder: Path) -> None:
    """Finish what a killed writer left beside `folder` before it is read: put back a row it
    had moved aside, delete its temporaries (taking the row's lock does both)."""
    if folder.parent.is_dir():
        with folder_lock(folder):
            pass


def prepare_results_dir(results_dir: Path) -> None:
    """Make sure results can be written under `results_dir` before any work starts, creating
    nothing: the folder, or the nearest folder above it that exists, must take a file."""
    if results_dir.exists() and not results_dir.is_dir():
        raise ResultError(f"--results-dir {results_dir} is a file, not a folder; choose a "
                          "folder")
    existing = next(p for p in (results_dir.absolute(), *results_dir.absolute().parents)
                    if p.exists())
    try:
        if not existing.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
        tempfile.TemporaryFile(dir=existing).close()
    except OSError as exc:
        raise ResultError(f"cannot write results under {results_dir}: "
                          f"{exc.strerror or exc}; choose a writable --results-dir") from None


def read_row(folder: Path, per_sample_names: set[str] | None = None
             ) -> tuple[Result, dict]:
    """A stored row and its per-sample values, checked as one unit: the schema, the files, one
    finite value per sample in every tensor (`per_sample_names`, if given: exactly these), and
    its figures against their index. Raises ResultError naming what does not check out."""
    import torch

    result = read_result(folder / RESULT)
    values = read_per_sample(folder)
    if per_sample_names is not None and set(values) != per_sample_names:
        missing = sorted(per_sample_names - set(values))
        extra = sorted(set(values) - per_sample_names)
        raise ResultError(f"{folder / PER_SAMPLE}: per-sample values do not match the metrics "
                          f"(missing {missing}, unexpected {extra})")
    for name, tensor in values.items():
        if tuple(tensor.shape) != (result.n_samples,):
            raise ResultError(f"{folder / PER_SAMPLE}: {name!r} has shape {list(tensor.shape)}, "
                              f"expected [{result.n_samples}] (n_samples of {RESULT})")
        if tensor.is_floating_point() and torch.isnan(tensor).any():
            raise ResultError(f"{folder / PER_SAMPLE}: {name!r} holds NaN")
    read_preview(folder)
    read_figures(folder)
    return result, values


def read_result(path: Path) -> Result:
    return read_json_model(path, Result, "result", ResultError)


def read_per_sample(folder: Path) -> dict:
    """{metric name: tensor [n_samples]} of a stored result."""
    return _load_tensors(folder / PER_SAMPLE)


def read_preview(folder: Path) -> dict:
    """The heatmap extract of a stored result (see wmplat.preview); {} if there is none."""
    return _load_tensors(folder / PREVIEW) if (folder / PREVIEW).exists() else {}


def _load_tensors(path: Path) -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError) as exc:
        raise ResultError(f"{path}: not a readable safetensors file ({exc})") from None


def read_results(results_dir: Path, zoo: str | None = None) -> list[Result]:
    """Every result under `results_dir` (optionally of one zoo), validated."""
    return [r for r, _ in read_results_with_folders(results_dir, zoo)]


def read_results_with_folders(results_dir: Path,
                              zoo: str | None = None) -> list[tuple[Result, Path]]:
    """Like `read_results`, with the folder each result was read from (where its
    per-sample values and preview are). Hidden folders (rows being written) are left out."""
    if not results_dir.is_dir():
        return []
    paths = [p for p in sorted(results_dir.rglob(RESULT))
             if not any(part.startswith(".") for part in p.relative_to(results_dir).parts)]
    pairs = [(read_result(p), p.parent) for p in paths]
    return [(r, folder) for r, folder in pairs if zoo is None or r.zoo == zoo]
