"""Analysis of trained models: energy drift over long rollouts, and figures."""

from .energy import EnergyReport, compare_energy
from .plots import plot_density, plot_energy_errors, plot_fit, plot_phase_portraits

__all__ = ["compare_energy", "EnergyReport", "plot_energy_errors", "plot_phase_portraits",
           "plot_fit", "plot_density"]
