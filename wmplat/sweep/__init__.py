"""Sweeps: a grid of evaluations (method × zoo × seed), run by an executor (worker processes
here, or Ray tasks), resumable, with failures isolated. See docs/sweeps.md."""
