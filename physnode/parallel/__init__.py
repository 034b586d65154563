"""Beyond one process: sweeps of the whole pipeline as tasks on ``dask.distributed``
(:func:`sweep`, ``physnode sweep CONFIG``), and data-parallel fits under ``torchrun``
(:mod:`physnode.parallel.distributed`)."""

from .distributed import DataParallel, init_from_environment
from .sweeps import Case, cases, load_config, read_table, run_case, sweep

__all__ = ["Case", "DataParallel", "cases", "init_from_environment", "load_config",
           "read_table", "run_case", "sweep"]
