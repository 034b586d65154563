"""Learned systems: ``nn.Module`` vector fields usable wherever a System is."""

from .base import PhysicsModel, load
from .cnf import CNF, ExactTrace, Hutchinson
from .damping import ConfigurationDamping, ConstantDamping
from .ensemble import Ensemble, EnsembleFit
from .hnn import HNN
from .latent import LatentODE, LatentPrediction
from .lnn import LNN
from .mass import ConfigurationMass, DiagonalMass, UnitMass
from .neural_ode import NeuralODE, SecondOrderNeuralODE

MODELS = {cls.__name__: cls for cls in (NeuralODE, SecondOrderNeuralODE, HNN, LNN, CNF,
                                        LatentODE)}
"""The model classes by class name, as :func:`load` finds them in a saved file."""

__all__ = ["PhysicsModel", "NeuralODE", "SecondOrderNeuralODE", "HNN", "LNN", "load", "MODELS",
           "UnitMass", "DiagonalMass", "ConfigurationMass", "ConstantDamping",
           "ConfigurationDamping", "Ensemble", "EnsembleFit", "CNF", "ExactTrace", "Hutchinson",
           "LatentODE", "LatentPrediction"]
