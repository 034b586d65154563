"""What is integrated: vector fields with no learning (DESIGN: systems/)."""

from .base import ReferenceSystem, System, sample_times
from .hamiltonian import HamiltonianSystem, SeparableHamiltonian
from .lagrangian import LagrangianSystem
from .reference import (
    HIRES,
    REFERENCE_SYSTEMS,
    Brusselator,
    CoupledSprings,
    DoublePendulum,
    Duffing,
    HenonHeiles,
    Kepler,
    Lorenz,
    LotkaVolterra,
    MassSpring,
    Oregonator,
    Pendulum,
    Robertson,
    VanDerPol,
)

__all__ = ["System", "ReferenceSystem", "sample_times", "HamiltonianSystem", "SeparableHamiltonian",
           "LagrangianSystem", "Pendulum", "MassSpring", "Duffing", "DoublePendulum", "Kepler",
           "HenonHeiles", "VanDerPol", "Robertson", "HIRES", "Oregonator", "Brusselator",
           "LotkaVolterra", "Lorenz", "CoupledSprings", "REFERENCE_SYSTEMS"]
