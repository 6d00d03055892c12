"""The leaderboard: stored results rendered as a table, Markdown, JSON or CSV.

JSON is the list of rows exactly as the result schema defines them; the other formats render the
same rows. Table and Markdown show the metric columns that at least one row has.
"""

import csv
import io
import json
from collections.abc import Sequence

from .schema import Metrics, Result

FORMATS = ("table", "markdown", "json", "csv")
KIND_ORDER = {"method": 0, "baseline": 1, "reference": 2}
STANDARD_METRICS = tuple(Metrics.model_fields)
SHORT_NAMES = {"accuracy_mean": "acc mean", "accuracy_max": "acc max",
               "max_similarity_median": "max sim (median)", "min_l2_median": "min L2 (median)",
               "aligned_l2_median": "aligned L2 (median)", "novelty_auc": "novelty AUC",
               "novelty_auc_ci": "AUC 95% CI", "replica_rate": "replica rate",
               "novel_good_rate": "novel & good"}


def label(row: Result) -> str:
    args = ", ".join(f"{k}={v}" for k, v in row.config.items())
    return f"{row.method}({args})" if args else row.method


def sort_rows(rows: Sequence[Result]) -> list[Result]:
    return sorted(rows, key=lambda r: (r.zoo, KIND_ORDER[r.kind], r.method, label(r),
                                       r.seed if r.seed is not None else -1, r.n_samples))


def render(rows: Sequence[Result], fmt: str) -> str:
    rows = sort_rows(rows)
    if fmt == "json":
        return json.dumps([r.model_dump(mode="json") for r in rows], indent=2)
    if fmt == "csv":
        return _csv(rows)
    if fmt in ("table", "markdown"):
        return "\n\n".join(_grid([r for r in rows if r.zoo == zoo], fmt)
                           for zoo in dict.fromkeys(r.zoo for r in rows)) or "(no results)"
    raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")


def metric_names(rows: Sequence[Result]) -> list[str]:
    """Standard metrics first, then plugin metrics, in a stable order."""
    extra = sorted({k for r in rows for k in (r.metrics.model_extra or {})})
    return [*STANDARD_METRICS, *extra]


def _value(row: Result, name: str):
    return getattr(row.metrics, name, None) if name in STANDARD_METRICS else \
        (row.metrics.model_extra or {}).get(name)


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) >= 10 else f"{value:.3f}"
    return str(value)


def _grid(rows: list[Result], fmt: str) -> str:
    shown = [m for m in metric_names(rows) if any(_value(r, m) is not None for r in rows)]
    header = ["method", "kind", "n", "seed", *(SHORT_NAMES.get(m, m) for m in shown)]
    if any(r.verdict for r in rows):
        header.append("verdict")
    body = []
    for r in rows:
        cells = [label(r), r.kind, str(r.n_samples), _fmt(r.seed),
                 *(_fmt(_value(r, m)) for m in shown)]
        if len(header) > len(cells):
            cells.append(r.verdict or "–")
        body.append(cells)
    title = f"zoo {rows[0].zoo} (revision {rows[0].zoo_revision}, task {rows[0].task})"
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"
                  for cells in body]
        return f"### {title}\n\n" + "\n".join(lines)
    widths = [max(len(x) for x in col) for col in zip(header, *body, strict=True)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
             for cells in [header, ["-" * w for w in widths], *body]]
    return title + "\n" + "\n".join(lines)


def _csv(rows: list[Result]) -> str:
    metrics = metric_names(rows)
    fields = ["schema_version", "method", "kind", "method_version", "zoo", "zoo_revision",
              "task", "n_samples", "seed", "config", "config_hash", *metrics, "verdict",
              "wmplat", "torch", "python", "created_at", "wall_seconds"]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        record = r.model_dump(mode="json")
        flat = {k: record[k] for k in fields if k in record and k not in ("config",)}
        flat["config"] = json.dumps(r.config, sort_keys=True)
        for m in metrics:
            value = _value(r, m)
            flat[m] = json.dumps(list(value)) if isinstance(value, (tuple, list)) else value
        flat.update(record["environment"])
        writer.writerow(flat)
    return out.getvalue()
