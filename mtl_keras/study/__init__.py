"""The study: every scenario measured on the real data, over seeds, into tables and plots.

`grids` defines and runs the configurations, `rows` reads finished runs into rows with
their seed statistics, `results` turns them into results/study.csv, RESULTS.md and plots.
"""

from mtl_keras.study.grids import (
    CONFIGS,
    GRIDS,
    OWN_TASKS,
    RECIPE_CONFIGS,
    SIZE_SCENARIOS,
    SIZES,
    multitask_config,
    own_tasks_in_grids,
    run_config,
    run_grids,
    sequential_run,
    transfer_experiment,
    unreported_tasks,
)
from mtl_keras.study.results import (
    affinity,
    affinity_table,
    cpus_line,
    differences_table,
    multitask_section,
    report,
    sequential_part,
    size_curves,
    size_table,
)
from mtl_keras.study.rows import (
    baseline_of,
    paired_differences,
    rows_from_csv,
    rows_from_runs,
    summarise,
    write_csv,
)

__all__ = [
    "CONFIGS",
    "GRIDS",
    "OWN_TASKS",
    "RECIPE_CONFIGS",
    "SIZES",
    "SIZE_SCENARIOS",
    "affinity",
    "affinity_table",
    "baseline_of",
    "cpus_line",
    "differences_table",
    "multitask_config",
    "multitask_section",
    "own_tasks_in_grids",
    "paired_differences",
    "report",
    "rows_from_csv",
    "sequential_part",
    "rows_from_runs",
    "run_config",
    "run_grids",
    "sequential_run",
    "size_curves",
    "size_table",
    "summarise",
    "transfer_experiment",
    "unreported_tasks",
    "write_csv",
]
