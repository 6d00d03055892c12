"""Tasks described by a task file (docs/byoz.md) instead of a Python task plugin.

`schema`: the task file's format (pydantic, versioned) and reading it; `layers`: building its
architecture from torch.nn; `data`: its test data (a safetensors file or a `datasets` data set
at a pinned commit); `symmetry`: the permutation groups derived from a Sequential; `task`: the
`FileTask` that evaluates stacked weights with `torch.func.vmap`.
"""

from .schema import TaskFile, read_task_file
from .task import FileTask, load_task_file

__all__ = ["FileTask", "TaskFile", "load_task_file", "read_task_file"]
