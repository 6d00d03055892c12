"""Every value wmplat itself puts in a result, declared once: its name, what it means, which way
reads better, how a table prints it, which column shows it, and what produces it.

Derived from these declarations: the fields of the result schema's `Metrics` (schema.py), the
leaderboard's columns and their order (report/leaderboard.py), the names the runner keeps for
itself (evaluation/runner.py), the Hub's parquet columns (hub/results.py) and the HTML report's
legend (report/html.py). docs/metrics.md is checked against them (tests/test_declarations.py).

A plugin metric's names need no declaration: its summary values are stored in `metrics` under
their own names and shown in a column headed by the name, after these.
"""

from dataclasses import dataclass
from typing import Literal

# What produces a value when no metric does: the calibrated statistics
# (evaluation/statistics.py) and the check for copies of heldout runs (evaluation/heldout_copies.py)
STATISTICS = "statistics"
HELDOUT_CHECK = "heldout check"
RUNNER = (STATISTICS, HELDOUT_CHECK)


@dataclass(frozen=True)
class SummaryValue:
    """One value per row, under `metrics` in result.json."""

    name: str
    meaning: str                # one line: the report's legend, the docs' overview
    produced_by: str            # a built-in metric's name, or one of RUNNER
    better: Literal["higher", "lower"] | None   # which way a value reads better for a method
    scale: str                  # its unit or range
    column: str | None = None   # the table's header; None: only CSV, JSON and parquet carry it
    # how report/leaderboard.py prints it: "number", with 3 decimals below 10 and 2 from 10;
    # "interval", [low, high] of two numbers (a list in JSON and parquet)
    format: Literal["number", "interval"] = "number"
    with_interval: str | None = None    # the interval value its column shows after it
    standard: bool = False      # a field of schema.Metrics (schema_version 1), always written


@dataclass(frozen=True)
class PerSampleValue:
    """One value per sample, in per_sample.safetensors."""

    name: str
    meaning: str
    produced_by: str
    dtype: str                  # the tensor's, as torch names it without `torch.`


# In the order of the table's columns; the standard ones among them are in the schema's order,
# and CSV lists the standard ones first, then the others.
SUMMARY_VALUES = (
    SummaryValue("accuracy_mean", "mean accuracy on the task's test set (the task's quality)",
                 "accuracy", "higher", "0 to 1", column="acc", standard=True),
    SummaryValue("accuracy_max", "highest accuracy of any sample", "accuracy", "higher",
                 "0 to 1", standard=True),
    SummaryValue("max_similarity_median", "median of each sample's highest IoU of misclassified "
                 "test examples with a training checkpoint", "max_similarity", "lower", "0 to 1",
                 column="max sim", standard=True),
    SummaryValue("min_l2_median", "median distance in weight space to the nearest training "
                 "checkpoint, hidden units not aligned", "min_l2", "higher",
                 "L2 norm of the flat weights", column="min L2", standard=True),
    # the aligned_l2 metric reports both distances; engine/neighbours.py computes them
    SummaryValue("aligned_l2_median", "median distance in weight space to the nearest training "
                 "checkpoint after aligning hidden units", "aligned_l2", "higher",
                 "L2 norm of the flat weights", column="aligned L2", standard=True),
    SummaryValue("hull_residual_median", "median distance to the convex hull of the nearest "
                 "aligned training checkpoints", "aligned_l2", "higher",
                 "L2 norm of the flat weights", column="hull resid"),
    SummaryValue("error_consistency_median", "median of each sample's highest error consistency "
                 "(Cohen's κ) with a training checkpoint, null for a task that is not a "
                 "classifier", "error_consistency", "lower", "-1 to 1", column="kappa"),
    SummaryValue("novelty_auc", "P(a sample's max sim < a heldout run's), 0.5 = as novel as "
                 "fresh training; in brackets, its 95% bootstrap interval", STATISTICS, "higher",
                 "0 to 1", column="novelty AUC [95% CI]", with_interval="novelty_auc_ci",
                 standard=True),
    SummaryValue("novelty_auc_ci", "95% bootstrap interval of novelty_auc", STATISTICS, None,
                 "0 to 1", format="interval", standard=True),
    SummaryValue("replica_rate", "share of samples that memorize", STATISTICS, "lower",
                 "0 to 1", column="replica", standard=True),
    SummaryValue("interpolation_rate", "share of samples that interpolate training checkpoints",
                 STATISTICS, "lower", "0 to 1", column="interp"),
    SummaryValue("degraded_rate", "share of samples worse than the heldout runs", STATISTICS,
                 "lower", "0 to 1"),
    SummaryValue("novel_good_rate", "share of samples that are novel and as good as fresh runs",
                 STATISTICS, "higher", "0 to 1", column="novel&good", standard=True),
    SummaryValue("heldout_copy_rate", "share of samples that copy a heldout run; any makes the "
                 "row invalid (null in rows stored before the check)", HELDOUT_CHECK, "lower",
                 "0 to 1", standard=True),
)

PER_SAMPLE_VALUES = (
    PerSampleValue("accuracy", "the sample's accuracy on the test set (the task's quality)",
                   "accuracy", "float32"),
    PerSampleValue("max_similarity", "highest IoU of misclassified test examples with a "
                   "training checkpoint", "max_similarity", "float32"),
    PerSampleValue("min_l2", "distance in weight space to the nearest training checkpoint",
                   "min_l2", "float64"),
    PerSampleValue("aligned_l2", "distance to the nearest training checkpoint after aligning "
                   "hidden units", "aligned_l2", "float64"),
    PerSampleValue("hull_residual", "distance to the convex hull of the nearest aligned "
                   "training checkpoints", "aligned_l2", "float64"),
    PerSampleValue("error_consistency", "highest Cohen's κ of errors with a training checkpoint",
                   "error_consistency", "float64"),
    PerSampleValue("category", "0 novel, 1 interpolates, 2 memorizes, 3 degraded", STATISTICS,
                   "int64"),
    PerSampleValue("heldout_l2", "aligned distance to the nearest heldout checkpoint",
                   HELDOUT_CHECK, "float64"),
    PerSampleValue("heldout_copy", "whether the sample copies a heldout run", HELDOUT_CHECK,
                   "bool"),
)

SUMMARIES = {value.name: value for value in SUMMARY_VALUES}
STANDARD = tuple(value.name for value in SUMMARY_VALUES if value.standard)
# (header, name) of the table's columns
COLUMNS = tuple((value.column, value.name) for value in SUMMARY_VALUES if value.column)
# the names no metric may report: the runner's own
RUNNER_NAMES = tuple(value.name for value in (*SUMMARY_VALUES, *PER_SAMPLE_VALUES)
                     if value.produced_by in RUNNER)
RUNNER_PER_SAMPLE = tuple(value.name for value in PER_SAMPLE_VALUES
                          if value.produced_by in RUNNER)
