"""Learned systems: ``nn.Module`` vector fields usable wherever a System is."""

from .base import PhysicsModel, load
from .damping import ConfigurationDamping, ConstantDamping
from .ensemble import Ensemble, EnsembleFit
from .hnn import HNN
from .latent import LatentODE, LatentPrediction
from .lnn import LNN
from .mass import ConfigurationMass, DiagonalMass, UnitMass
from .neural_ode import NeuralODE

MODELS = {cls.__name__: cls for cls in (NeuralODE, HNN, LNN, LatentODE)}

__all__ = ["PhysicsModel", "NeuralODE", "HNN", "LNN", "load", "MODELS", "UnitMass",
           "DiagonalMass", "ConfigurationMass", "ConstantDamping", "ConfigurationDamping",
           "Ensemble", "EnsembleFit", "LatentODE", "LatentPrediction"]
