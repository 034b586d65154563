"""physnode: physics-respecting neural ODEs, structure-preserving and stiff integrators, and
equation discovery."""

from . import analysis, data, discovery, integrators, models, parallel, systems, training
from ._odeint import odeint
from ._solve import Solution, solve
from ._validation import IntegrationError, TrainingError
from .analysis import compare_energy
from .discovery import discover
from .integrators.events import Crossings, Event
from .parallel import sweep
from .training import fit

__all__ = ["systems", "integrators", "models", "data", "training", "discovery", "analysis",
           "parallel", "solve", "Solution", "Event", "Crossings", "odeint", "fit", "discover",
           "sweep", "compare_energy", "IntegrationError", "TrainingError"]
__version__ = "0.1.0"
