"""Beyond one process: sweeps of the whole pipeline as tasks on ``dask.distributed``
(:func:`sweep`, ``physnode sweep CONFIG``)."""

from .sweep import Case, cases, load_config, read_table, run_case, sweep

__all__ = ["Case", "cases", "load_config", "read_table", "run_case", "sweep"]
