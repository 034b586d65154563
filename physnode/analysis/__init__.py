"""Analysis of trained models: energy drift over long rollouts, figures, and self-contained
HTML reports."""

from .energy import EnergyReport, compare_energy
from .html import write_html
from .plots import plot_density, plot_energy_errors, plot_fit, plot_history, plot_phase_portraits

__all__ = ["compare_energy", "EnergyReport", "plot_energy_errors", "plot_phase_portraits",
           "plot_fit", "plot_density", "plot_history", "write_html"]
