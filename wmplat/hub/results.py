"""Results on the Hub: one JSON file per result under a stable path, a parquet table of all
of them that `datasets.load_dataset` reads, and a card with the markdown leaderboard.

A push merges: it reads the repo at its current head, keeps every result file others pushed,
adds or replaces its own (the same result pushed twice lands on the same path: one row), and
commits all of it in one commit whose parent is that head, so a concurrent push fails instead
of silently dropping rows.
"""

import io
import json
from collections.abc import Sequence
from pathlib import Path

from ..errors import HubError, ResultError
from ..evaluation.store import read_result, result_folder, zoo_key
from ..measures import SUMMARIES
from ..report.leaderboard import metric_names, render
from ..schema import Result
from .cards import leaderboard_card
from .client import hub_errors

RESULTS_DIR = "results"
TABLE = "data/results.parquet"
CARD = "README.md"


def result_path(row: Result) -> str:
    """Stable within a repo: one path per (zoo at its revision, method, config, seed, n).
    Each part is one path component: a `Result`'s names, revision and config hash are
    validated (schema.py), and `result_folder` refuses anything else."""
    folder = result_folder(Path(RESULTS_DIR), zoo_key(row.zoo, row.zoo_revision), row.method,
                           row.config_hash, row.seed, row.n_samples)
    return folder.as_posix() + ".json"


def push_results(rows: Sequence[Result], repo_id: str, token: str) -> str:
    """Merge `rows` into the results repo in one commit; return the commit."""
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi(token=token)
    action = f"pushing {len(rows)} results to {repo_id}"
    with hub_errors(action):
        api.create_repo(repo_id, repo_type="dataset", exist_ok=True)
        head = api.repo_info(repo_id, repo_type="dataset").sha
        merged = {**_remote_results(api, repo_id, head), **{result_path(r): r for r in rows}}
        table = sorted(merged.values(), key=lambda r: (r.zoo, r.kind, r.method, r.config_hash))
        operations = [CommitOperationAdd(path, _result_bytes(merged[path]))
                      for path in (result_path(r) for r in rows)]
        operations += [
            CommitOperationAdd(TABLE, parquet_table(table)),
            CommitOperationAdd(CARD, leaderboard_card(
                table, repo_id, TABLE, render(table, "markdown")).encode())]
        info = api.create_commit(repo_id, operations, repo_type="dataset", parent_commit=head,
                                 commit_message=f"wmplat: {len(rows)} results")
    return info.oid


def _result_bytes(row: Result) -> bytes:
    return (row.model_dump_json(indent=2) + "\n").encode()


def _remote_results(api, repo_id: str, head: str | None) -> dict[str, Result]:
    """Every result file already in the repo at `head`, parsed: a file that does not parse
    stops the push rather than being dropped from the table."""
    if head is None:
        return {}
    from huggingface_hub import snapshot_download

    # one parallel download of every result file at `head`, into the client's cache
    folder = Path(snapshot_download(repo_id, repo_type="dataset", revision=head,
                                    allow_patterns=[f"{RESULTS_DIR}/**/*.json"],
                                    token=api.token))
    paths = sorted(p.relative_to(folder).as_posix()
                   for p in (folder / RESULTS_DIR).rglob("*.json")) \
        if (folder / RESULTS_DIR).is_dir() else []
    found = {}
    for path in paths:
        try:
            found[path] = read_result(folder / path)
        except ResultError as exc:
            raise HubError(f"{repo_id}/{path} is not a wmplat result ({exc}); fix or remove "
                           "it before pushing, so that no row is lost") from None
    return found


def parquet_table(rows: Sequence[Result]) -> bytes:
    """One row per result: the schema's fields as columns, `config` as canonical JSON (its
    keys differ between methods), every metric as a float column (an interval as a list of
    two) in the leaderboard's CSV order, null where a result lacks it, and the environment as
    a struct."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = metric_names(rows)
    intervals = [n for n in names if n in SUMMARIES and SUMMARIES[n].format == "interval"]
    numbers = [n for n in names if n not in intervals]
    columns = {
        "method": pa.string(), "kind": pa.string(), "method_version": pa.string(),
        "zoo": pa.string(), "zoo_revision": pa.string(), "task": pa.string(),
        "n_samples": pa.int64(), "seed": pa.int64(), "config": pa.string(),
        "config_hash": pa.string(), **{name: pa.float64() for name in numbers},
        **{name: pa.list_(pa.float64()) for name in intervals}, "verdict": pa.string(),
        "environment": pa.struct([("wmplat", pa.string()), ("torch", pa.string()),
                                  ("python", pa.string()), ("device", pa.string())]),
        "created_at": pa.string(), "wall_seconds": pa.float64(), "result_file": pa.string(),
        "schema_version": pa.int64()}
    records = [_record(row, names) for row in rows]
    table = pa.Table.from_pylist(records, schema=pa.schema(list(columns.items())))
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def _record(row: Result, names: list[str]) -> dict:
    metrics = row.metrics.model_dump()
    return {**row.model_dump(mode="json", exclude={"metrics", "config"}),
            "config": json.dumps(row.config, sort_keys=True),
            **{name: list(v) if isinstance(v := metrics.get(name), tuple) else v
               for name in names},
            "result_file": result_path(row)}
