"""Equation discovery: regenerate clean data from a trained model, then sparse regression
(SINDy, via pysindy) or symbolic regression (pyoperon), with SymPy as the canonical form."""

from .baseline import pysindy_raw
from .discover import discover
from .energies import Lagrangian, hamiltonian, lagrangian
from .equations import Equations, EquationSystem, round_floats
from .library import Library
from .methods import DiscoveryMethod, Sindy, SymbolicRegression
from .quality import FitQuality, fit_quality
from .regenerate import regenerate

__all__ = ["discover", "pysindy_raw", "Sindy", "SymbolicRegression", "DiscoveryMethod",
           "FitQuality", "fit_quality", "regenerate", "hamiltonian", "lagrangian", "Lagrangian",
           "Equations", "EquationSystem", "Library", "round_floats"]
