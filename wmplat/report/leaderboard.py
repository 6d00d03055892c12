"""The leaderboard: stored results rendered as a table, Markdown, JSON, CSV or HTML.

JSON is the list of rows exactly as the result schema defines them; the other formats render the
same rows. Table, Markdown and HTML show the metric columns that at least one row has. HTML also
needs each row's folder (for the figures), so it is rendered by `wmplat.report`, from these
functions.
"""

import csv
import io
import json
from collections.abc import Callable, Sequence

from ..evaluation.store import config_label
from ..measures import COLUMNS, STANDARD, SUMMARIES
from ..schema import VERDICTS, MetricAggregate, Result, SeedAggregate

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


def metric_value(row: Result, name: str):
    if name in STANDARD:
        return getattr(row.metrics, name)
    return (row.metrics.model_extra or {}).get(name)


def dominated_by(row: Result, rows: Sequence[Result]) -> list[str]:
    """The baselines (same zoo, seed and sample count) at least as accurate as `row` and at
    least as novel in both spaces: novelty AUC (function) and aligned L2 (weights)."""
    def at_least(other, name):
        a, b = metric_value(other, name), metric_value(row, name)
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
    return metric_columns(metric_names(rows),
                          lambda m: any(metric_value(r, m) is not None for r in rows))


def metric_columns(names: Sequence[str], shown: Callable[[str], bool]) -> list[tuple[str, str]]:
    """(header, metric): the declared columns, then the plugin metrics among `names` under their
    own names, each where `shown(metric)`."""
    extra = [(m, m) for m in names if m not in SUMMARIES]
    return [(h, m) for h, m in (*COLUMNS, *extra) if shown(m)]


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
    return layout(title(rows), header(cols), [cells(r, rows, cols) for r in rows],
                  invalid_notices(rows), fmt)


def layout(heading: str, head: list[str], body: list[list[str]], notices: list[str],
           fmt: str) -> str:
    """One zoo's table, `markdown` or plain text, under its heading and above its notices."""
    if fmt == "markdown":
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |"
                  for row in body]
        lines += [f"\n> **{n}**" for n in notices]
        return f"### {heading}\n\n" + "\n".join(lines)
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in [head, ["-" * w for w in widths], *body]]
    lines += [f"! {n}" for n in notices]
    return heading + "\n" + "\n".join(lines)


def _cell(row: Result, name: str) -> str:
    """The value as its declared format prints it; then its interval, if it has one."""
    paired = SUMMARIES[name].with_interval if name in SUMMARIES else None
    if paired and (interval := metric_value(row, paired)) is not None:
        return f"{_fmt(metric_value(row, name))} {_fmt(interval)}"
    return _fmt(metric_value(row, name))


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
            value = metric_value(r, m)
            flat[m] = json.dumps(list(value)) if isinstance(value, (tuple, list)) else value
        flat.update(record["environment"])
        writer.writerow(flat)
    return out.getvalue()


# --- rows aggregated over seeds (wmplat/report/aggregate.py computes them) -------------------

AGGREGATE_FORMATS = ("table", "markdown", "json", "csv")
AGGREGATE_FIELDS = ("mean", "std", "ci_low", "ci_high", "n")


def render_aggregates(aggregates: Sequence[SeedAggregate], fmt: str) -> str:
    """Aggregates in the order given (`aggregate_seeds` gives the leaderboard's)."""
    if fmt == "json":
        return json.dumps([a.model_dump(mode="json") for a in aggregates], indent=2)
    if fmt == "csv":
        return _aggregate_csv(aggregates)
    if fmt in ("table", "markdown"):
        return "\n\n".join(_aggregate_grid([a for a in aggregates if a.zoo == zoo], fmt)
                           for zoo in dict.fromkeys(a.zoo for a in aggregates)) \
            or "(no results)"
    raise ValueError(f"format {fmt!r} does not aggregate; choose from "
                     f"{', '.join(AGGREGATE_FORMATS)}")


def aggregate_metric_names(aggregates: Sequence[SeedAggregate]) -> list[str]:
    """The numeric declared values, then the plugin metrics of any aggregate, alphabetically."""
    declared = [m for m in DECLARED if SUMMARIES[m].format == "number"]
    return [*declared, *sorted({m for a in aggregates for m in a.metrics} - set(declared))]


def _aggregate_grid(aggregates: list[SeedAggregate], fmt: str) -> str:
    cols = metric_columns(aggregate_metric_names(aggregates),
                          lambda m: any(a.metrics.get(m) is not None for a in aggregates))
    head = ["method", "kind", "n", "n_seeds", *(_aggregate_header(h, m) for h, m in cols),
            "verdicts"]
    body = [[label(a), a.kind, str(a.n_samples), str(a.n_seeds),
             *(_aggregate_cell(a, m) for _, m in cols), verdict_distribution(a)]
            for a in aggregates]
    heading = f"{title(aggregates)}, over seeds: mean ± half-width of the 95% t-interval"
    return layout(heading, head, body, _aggregate_notices(aggregates), fmt)


def _aggregate_header(header: str, name: str) -> str:
    # the column's own interval (novelty AUC's bootstrap one) is not what an aggregate shows
    paired = name in SUMMARIES and SUMMARIES[name].with_interval
    return header.split(" [")[0] if paired else header


def _aggregate_cell(aggregate: SeedAggregate, name: str) -> str:
    """`mean ± half-width`; the mean alone for one seed; `(n=K)` after it if only K seeds of
    the row's have a value."""
    value = aggregate.metrics.get(name)
    if value is None:
        return _fmt(None)
    text = _fmt(value.mean)
    if value.ci is not None:
        text += f" ± {_fmt(value.ci[1] - value.mean)}"
    if value.n < aggregate.n_seeds:
        text += f" (n={value.n})"
    return text


def verdict_distribution(aggregate: SeedAggregate) -> str:
    """`memorizes 3/3` when the seeds agree, else `memorizes 2, interpolates 1`."""
    shown = [(_VERDICT_WORDS.get(v, v), count) for v, count in aggregate.verdicts.items()]
    if len(shown) == 1:
        return f"{shown[0][0]} {shown[0][1]}/{aggregate.n_seeds}"
    return ", ".join(f"{v} {count}" for v, count in shown)


_VERDICT_WORDS = {"invalid": "INVALID"}


def _aggregate_notices(aggregates: Sequence[SeedAggregate]) -> list[str]:
    return [f"INVALID {label(a)} in {a.verdicts['invalid']} of {a.n_seeds} seeds: samples "
            "that copy heldout runs, models no method may see; those rows are no result, and "
            "the values above include them (docs/trust.md)"
            for a in aggregates if "invalid" in a.verdicts]


def _aggregate_csv(aggregates: Sequence[SeedAggregate]) -> str:
    metrics = aggregate_metric_names(aggregates)
    fields = ["schema_version", "aggregate", "interval", "method", "kind", "method_version",
              "zoo", "zoo_revision", "task", "n_samples", "config", "config_hash", "n_seeds",
              "seeds", *(f"{m}_{f}" for m in metrics for f in AGGREGATE_FIELDS),
              *(f"verdict_{v}" for v in VERDICTS)]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for a in aggregates:
        flat = {k: v for k, v in a.model_dump(mode="json").items() if k in fields}
        flat["config"] = json.dumps(a.config, sort_keys=True)
        flat["seeds"] = json.dumps(a.seeds)
        for m in metrics:
            flat.update(_aggregate_csv_cells(m, a.metrics.get(m)))
        flat.update({f"verdict_{v}": a.verdicts.get(v, 0) for v in VERDICTS})
        writer.writerow(flat)
    return out.getvalue()


def _aggregate_csv_cells(name: str, value: MetricAggregate | None) -> dict:
    if value is None:
        return {f"{name}_n": 0}
    low, high = value.ci or (None, None)
    return {f"{name}_mean": value.mean, f"{name}_std": value.std, f"{name}_ci_low": low,
            f"{name}_ci_high": high, f"{name}_n": value.n}
