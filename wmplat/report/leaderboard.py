"""The leaderboard: stored results rendered as a table, Markdown, JSON, CSV or HTML.

JSON is the list of rows exactly as the result schema defines them; the other formats render the
same rows. Table, Markdown and HTML show the metric columns that at least one row has. HTML also
needs each row's folder (for the figures), so it is rendered by `wmplat.report`, from these
functions.
"""

import csv
import io
import json
from collections.abc import Sequence

from ..evaluation.store import config_label
from ..measures import COLUMNS, STANDARD, SUMMARIES
from ..schema import Result

FORMATS = ("table", "markdown", "json", "csv", "html")
KIND_ORDER = {"method": 0, "baseline": 1, "reference": 2}
# the declared values (wmplat/measures.py) in the order CSV lists them: the standard ones first
DECLARED = (*STANDARD, *(name for name in SUMMARIES if name not in STANDARD))
# a baseline dominates a method that it is at least as good as in all of these (by `better`)
DOMINANCE = ("accuracy_mean", "novelty_auc", "aligned_l2_median")


def label(row: Result) -> str:
    return config_label(row.method, row.config)


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
    if fmt == "html":
        raise ValueError("html needs the result folders: use wmplat.report.render_report")
    raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")


def metric_names(rows: Sequence[Result]) -> list[str]:
    """Schema metrics, then wmplat's own, then plugin metrics, in a stable order."""
    extra = sorted({k for r in rows for k in (r.metrics.model_extra or {})} - set(DECLARED))
    return [*DECLARED, *extra]


def _value(row: Result, name: str):
    if name in STANDARD:
        return getattr(row.metrics, name)
    return (row.metrics.model_extra or {}).get(name)


def dominated_by(row: Result, rows: Sequence[Result]) -> list[str]:
    """The baselines (same zoo, seed and sample count) at least as accurate as `row` and at
    least as novel in both spaces: novelty AUC (function) and aligned L2 (weights)."""
    def at_least(other, name):
        a, b = _value(other, name), _value(row, name)
        if a is None or b is None:
            return False
        return a >= b if SUMMARIES[name].better == "higher" else a <= b

    return [label(b) for b in rows
            if b.kind == "baseline" and (b.zoo, b.seed, b.n_samples) ==
            (row.zoo, row.seed, row.n_samples)
            and all(at_least(b, m) for m in DOMINANCE)]


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) >= 10 else f"{value:.3f}"
    return str(value)


def columns(rows: Sequence[Result]) -> list[tuple[str, str]]:
    """(header, metric) of the metric columns of one zoo's table: those a row has a value for."""
    extra = [(m, m) for m in metric_names(rows) if m not in SUMMARIES]
    return [(h, m) for h, m in (*COLUMNS, *extra) if any(_value(r, m) is not None for r in rows)]


def header(cols: Sequence[tuple[str, str]]) -> list[str]:
    return ["method", "kind", "n", "seed", *(h for h, _ in cols), "verdict", "dominated by"]


def cells(row: Result, rows: Sequence[Result], cols: Sequence[tuple[str, str]]) -> list[str]:
    """One row of one zoo's table, in the order of `header`."""
    return [label(row), row.kind, str(row.n_samples), _fmt(row.seed),
            *(_cell(row, m) for _, m in cols), _verdict(row),
            ", ".join(dominated_by(row, rows)) if row.kind == "method" else ""]


def _verdict(row: Result) -> str:
    return "INVALID" if row.verdict == "invalid" else row.verdict or "–"


def title(rows: Sequence[Result]) -> str:
    revisions = ", ".join(dict.fromkeys(str(r.zoo_revision) for r in rows))
    return f"zoo {rows[0].zoo} (revision {revisions}, task {rows[0].task})"


def invalid_notices(rows: Sequence[Result]) -> list[str]:
    """One sentence per invalid row: why it is no result (docs/trust.md)."""
    return [f"INVALID {label(r)} (seed {_fmt(r.seed)}): "
            f"{round((r.metrics.heldout_copy_rate or 0) * r.n_samples)} of its {r.n_samples} "
            "samples are copies of heldout runs, models no method may see; this row is no "
            "result (docs/trust.md)" for r in rows if r.verdict == "invalid"]


def _grid(rows: list[Result], fmt: str) -> str:
    cols = columns(rows)
    head = header(cols)
    body = [cells(r, rows, cols) for r in rows]
    notices = invalid_notices(rows)
    if fmt == "markdown":
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |"
                  for row in body]
        lines += [f"\n> **{n}**" for n in notices]
        return f"### {title(rows)}\n\n" + "\n".join(lines)
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in [head, ["-" * w for w in widths], *body]]
    lines += [f"! {n}" for n in notices]
    return title(rows) + "\n" + "\n".join(lines)


def _cell(row: Result, name: str) -> str:
    """The value as its declared format prints it; then its interval, if it has one."""
    paired = SUMMARIES[name].with_interval if name in SUMMARIES else None
    if paired and (interval := _value(row, paired)) is not None:
        return f"{_fmt(_value(row, name))} {_fmt(interval)}"
    return _fmt(_value(row, name))


def _csv(rows: list[Result]) -> str:
    metrics = metric_names(rows)
    fields = ["schema_version", "method", "kind", "method_version", "zoo", "zoo_revision",
              "task", "n_samples", "seed", "config", "config_hash", *metrics, "verdict",
              "wmplat", "torch", "python", "device", "created_at", "wall_seconds"]
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
