"""What a head learns: tasks by name (`TASKS`), a user's own files (`from_files`), and the
task kinds (`KINDS`: one class per kind of task, in `kind.py` and the files beside it)."""

from mtl_keras.tasks.kinds import KINDS
from mtl_keras.tasks.registry import (
    DEFAULT_TASKS,
    TASKS,
    Task,
    from_datasets,
    from_files,
    resolve_tasks,
    run_tasks,
    split_sizes,
)

__all__ = [
    "DEFAULT_TASKS",
    "KINDS",
    "TASKS",
    "Task",
    "from_datasets",
    "from_files",
    "resolve_tasks",
    "run_tasks",
    "split_sizes",
]
