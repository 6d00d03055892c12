"""The machinery under the metrics and the runner: alignment of hidden units, nearest aligned
neighbours, the memory budget, thread settings, atomic files and progress.

Internal: plugins use the public API (`import wmplat`, docs/plugins.md).
"""
