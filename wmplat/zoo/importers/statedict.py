"""`--format statedict`: a folder tree of `.safetensors`, `.pt` and `.pth` files, one state dict
(or a `(state_dict, metric)` pair) each. Run, step and seed come from each file's path by the
named groups of `--pattern`; `--metadata` adds columns (a seed, the recorded test accuracy)
matched on those groups; `--rename` maps the files' keys to the task's.

Loading is safe: safetensors, or `torch.load(weights_only=True)`, which refuses any pickle that
needs code to rebuild.
"""

import csv
import json
import pickle
import re
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from ...errors import ConfigError, ZooError
from .checkpoint import Checkpoint
from .jsonlines import json_objects

SUFFIXES = (".safetensors", ".pt", ".pth")
DEFAULT_PATTERN = r"(?P<run>.+)\.(?:safetensors|pt|pth)"   # each file a run of its own
QUALITY_COLUMNS = ("quality", "test_acc", "test_accuracy")


def read_statedict(src: Path, pattern: str | None, metadata: Path | None,
                   rename: list[str]) -> Iterator[Checkpoint]:
    """The checkpoints of `src`, in path order, keys renamed (not yet checked)."""
    regex = _compile(pattern or DEFAULT_PATTERN)
    renames = [parse_rename(item) for item in rename]
    matched = _matched_files(src, regex)
    rows = read_metadata(metadata, set(regex.groupindex)) if metadata else None
    run_ids = number_runs([groups["run"] for _, groups in matched])
    for path, groups in matched:
        state, metric = load_state(path)
        meta = _metadata_row(rows, groups, path, metadata) if rows is not None else {}
        run = run_ids[groups["run"]]
        yield Checkpoint(
            source=str(path), run=run,
            step=_integer(groups.get("step", meta.get("step", 0)), "step", path),
            seed=_integer(groups.get("seed", meta.get("seed", run)), "seed", path),
            params={_renamed(key, renames): value for key, value in state.items()
                    if not key.endswith("num_batches_tracked")},
            recorded_quality=_quality(meta, metric, path))


def _compile(pattern: str) -> re.Pattern:
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"--pattern {pattern!r}: not a regular expression ({exc})") from None
    if "run" not in regex.groupindex:
        raise ConfigError(f"--pattern {pattern!r} has no group (?P<run>...): a zoo is split by "
                          "run, so the pattern must say which run each file belongs to")
    if unknown := set(regex.groupindex) - {"run", "step", "seed"}:
        raise ConfigError(f"--pattern {pattern!r}: unknown group {sorted(unknown)[0]!r}; the "
                          "groups are run, step and seed")
    return regex


def parse_rename(item: str) -> tuple[re.Pattern, str]:
    pattern, sep, repl = item.partition("=")
    if not sep or not pattern:
        raise ConfigError(f"--rename {item!r}: write REGEX=REPL, e.g. '^module\\.='")
    try:
        return re.compile(pattern), repl
    except re.error as exc:
        raise ConfigError(f"--rename {item!r}: not a regular expression ({exc})") from None


def _renamed(key: str, renames: list[tuple[re.Pattern, str]]) -> str:
    for regex, repl in renames:
        key = regex.sub(repl, key)
    return key


def _matched_files(src: Path, regex: re.Pattern) -> list[tuple[Path, dict[str, str]]]:
    if not src.is_dir():
        raise ConfigError(f"{src}: not a folder of checkpoints")
    files = sorted(p for p in src.rglob("*") if p.suffix in SUFFIXES and p.is_file())
    matched, skipped = [], []
    for path in files:
        match = regex.fullmatch(path.relative_to(src).as_posix())
        if match:
            matched.append((path, {k: v for k, v in match.groupdict().items() if v is not None}))
        else:
            skipped.append(path)
    if not matched:
        raise ConfigError(f"{src}: no checkpoint file ({', '.join(SUFFIXES)}) matches --pattern "
                          f"{regex.pattern!r} (matched against the path inside the folder, "
                          f"e.g. {files[0].relative_to(src).as_posix()!r})" if files else
                          f"{src}: no checkpoint files ({', '.join(SUFFIXES)}) in it")
    if skipped:
        import warnings
        warnings.warn(f"{len(skipped)} checkpoint files do not match --pattern and are left "
                      f"out, e.g. {skipped[0]}", stacklevel=2)
    return matched


def number_runs(runs: list[str]) -> dict[str, int]:
    """Run names as run numbers: themselves where all are integers, else 0, 1, ... in order."""
    distinct = sorted(set(runs))
    if all(r.isdigit() for r in distinct):
        return {r: int(r) for r in distinct}
    return {r: i for i, r in enumerate(distinct)}


def load_state(path: Path) -> tuple[dict, object]:
    """A file's state dict and the metric stored beside it (or None), loaded safely."""
    if path.suffix == ".safetensors":
        try:
            return load_file(path), None
        except (SafetensorError, OSError, ValueError) as exc:
            raise ZooError(f"{path}: not a readable safetensors file ({exc})") from None
    try:
        data = torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise ZooError(f"{path}: needs code to unpickle, which wmplat never runs ({reason}); "
                       "re-save the state dict alone, e.g. safetensors.torch.save_file("
                       "model.state_dict(), 'model.safetensors')") from None
    except (RuntimeError, OSError, EOFError, ValueError) as exc:
        raise ZooError(f"{path}: not a readable torch file ({type(exc).__name__}: "
                       f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    if isinstance(data, dict):
        return data, None
    if isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[0], dict):
        return data[0], data[1]
    raise ZooError(f"{path}: holds a {type(data).__name__}, not a state dict or a "
                   "(state_dict, metric) pair")


def read_metadata(path: Path, groups: set[str]) -> list[dict[str, str]]:
    """The rows of a CSV or JSON-lines file, every value as text."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--metadata {path}: cannot read it ({exc})") from None
    if path.suffix in (".jsonl", ".json"):
        rows = [{k: _text(v) for k, v in row.items()}
                for _, row in json_objects(text, f"--metadata {path}", ConfigError)]
    else:
        rows = [dict(row) for row in csv.DictReader(text.splitlines())]
    if not rows or not groups & set(rows[0]):
        raise ConfigError(f"--metadata {path}: needs a column named after a --pattern group "
                          f"({', '.join(sorted(groups))}) to match rows to checkpoints")
    return rows


def _text(value) -> str:
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def _metadata_row(rows: list[dict[str, str]], groups: dict[str, str], path: Path,
                  metadata: Path) -> dict[str, str]:
    keys = [k for k in groups if k in rows[0]]
    found = [row for row in rows if all(_same(row.get(k), groups[k]) for k in keys)]
    if len(found) > 1:
        raise ConfigError(f"--metadata {metadata}: {len(found)} rows match {path} on "
                          f"{', '.join(keys)}; each checkpoint needs one row at most")
    return found[0] if found else {}


def _same(a: str | None, b: str) -> bool:
    if a is None:
        return False
    if a.strip().lstrip("-").isdigit() and b.lstrip("-").isdigit():
        return int(a) == int(b)
    return a.strip() == b


def _integer(value, what: str, path: Path) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{path}: {what} {value!r} is not an integer") from None


def _quality(meta: dict[str, str], metric, path: Path) -> float | None:
    for column in QUALITY_COLUMNS:
        if meta.get(column) not in (None, ""):
            return _number(meta[column], column, path)
    if isinstance(metric, (int, float)) and not isinstance(metric, bool):
        return float(metric)
    if isinstance(metric, torch.Tensor) and metric.numel() == 1:
        return float(metric)
    return None


def _number(value: str, column: str, path: Path) -> float:
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"--metadata: {column} {value!r} for {path} is not a number") from None
