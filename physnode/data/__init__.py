"""Trajectory data: containers, simulation, CSV/NPZ input and output, and reading recordings
from text tables, arrays and DataFrames."""

from .io import from_arrays, from_dataframe, load, save
from .simulate import simulate
from .trajectories import Trajectories, Trajectory

__all__ = ["Trajectory", "Trajectories", "simulate", "load", "save", "from_arrays",
           "from_dataframe"]
