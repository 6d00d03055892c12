"""One evaluation: the runner (fit, sample, score, judge), the statistics that judge a row, the
heldout-copy check, and the result store under --results-dir.

Internal: plugins use the public API (`import wmplat`, docs/plugins.md).
"""
