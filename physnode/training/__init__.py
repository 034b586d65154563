"""Training: losses, derivative estimation and ``fit``."""

from .derivatives import estimate_derivatives
from .fit import FitResult, fit
from .losses import (
    DensityLoss,
    DerivativeLoss,
    ELBOLoss,
    RolloutLoss,
    derivative_loss,
    rollout_loss,
)

__all__ = ["fit", "FitResult", "DerivativeLoss", "RolloutLoss", "ELBOLoss", "DensityLoss",
           "estimate_derivatives", "derivative_loss", "rollout_loss"]
