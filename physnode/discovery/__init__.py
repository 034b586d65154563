"""Equation discovery: regenerate clean data from a trained model, then sparse regression
(SINDy, via pysindy) or symbolic regression (pyoperon), with SymPy as the canonical form."""

from .discover import discover
from .energies import hamiltonian, lagrangian
from .equations import Equations, EquationSystem, round_floats
from .library import Library
from .regenerate import regenerate

__all__ = ["discover", "regenerate", "hamiltonian", "lagrangian", "Equations",
           "EquationSystem", "Library", "round_floats"]
