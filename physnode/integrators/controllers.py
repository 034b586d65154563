"""Per-sample step-size control: one controller object for every adaptive method.

Error norms are weighted RMS norms ``‖e / (atol + rtol·max(|y|, |y_new|))‖`` per sample
(:class:`~physnode.integrators.base.Tolerance`); a step is accepted when the norm is at most 1
(Hairer, Nørsett & Wanner, *Solving ODEs I*, §II.4). A controller is a frozen dataclass of its
constants and the rule that turns the norm into the next step size, as diffrax's
``PIDController``: :class:`StepSizeController` is the elementary (integral) rule, the
default of ``dopri5``; :class:`PredictiveController` adds Gustafsson's prediction and keeps
the step size through small changes, the default of the implicit methods.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from .._validation import check_interval, check_real
from .base import rms


@dataclass(frozen=True, kw_only=True)
class StepSizeController:
    """Elementary (integral) step-size controller,
    ``h_new = h · clip(safety · err^(−1/(q+1)), min_factor, max_factor)``, per sample, where
    ``err`` is the attempt's weighted error norm and ``q`` the order of the method's error
    estimate (Hairer, Nørsett & Wanner, *Solving ODEs I*, §II.4).

    Parameters
    ----------
    safety : float
        Safety factor in (0, 1]: the fraction of the optimal step that is tried.
    min_factor : float
        Largest shrink per attempt, in (0, 1).
    max_factor : float
        Largest growth per attempt, greater than 1.

    Examples
    --------
    >>> import physnode as pn
    >>> pn.integrators.Dopri5(controller=pn.integrators.StepSizeController(safety=0.8))
    Dopri5(controller=StepSizeController(safety=0.8, min_factor=0.2, max_factor=10.0))
    """

    #: whether :meth:`factor` uses the previous accepted step (``h_prev``, ``error_prev``),
    #: which the method then keeps per sample
    uses_history: ClassVar[bool] = False

    safety: float = 0.9
    min_factor: float = 0.2
    max_factor: float = 10.0

    def __post_init__(self):
        check_interval("safety", self.safety, 0, 1, closed_high=True)
        check_interval("min_factor", self.min_factor, 0, 1)
        check_interval("max_factor", self.max_factor, 1, math.inf)

    def factor(self, error: torch.Tensor, exponent: float, *, accepted: torch.Tensor,
               h: torch.Tensor | None = None, h_prev: torch.Tensor | None = None,
               error_prev: torch.Tensor | None = None,
               safety: torch.Tensor | float | None = None) -> torch.Tensor:
        """Step-size multiplier per sample (detached: step sizes are not differentiated).

        Parameters
        ----------
        error : torch.Tensor
            ``(B,)`` error norms of the attempt.
        exponent : float
            ``1/(q+1)``, the method's :attr:`error_exponent`.
        accepted : torch.Tensor
            ``(B,)`` the accept decisions.
        h, h_prev, error_prev : torch.Tensor, optional
            ``(B,)`` the attempted step, and the step and error norm of the last accepted
            one (0 where there is none): the history a predictive rule uses.
        safety : float or torch.Tensor, optional
            A safety factor replacing :attr:`safety` (implicit methods lower it per sample
            after slow Newton convergence).
        """
        safety = self.safety if safety is None else safety
        err = error.detach().clamp_min(1e-10)
        return (safety * err.pow(-exponent)).clamp(self.min_factor, self.max_factor)

    def keep(self, factor: torch.Tensor, accepted: torch.Tensor) -> torch.Tensor | None:
        """``(B,)`` samples whose step size is kept as it is (factor 1), or ``None``: the
        elementary rule never keeps a step."""
        return None

    def next_step(self, h: torch.Tensor, h_try: torch.Tensor, factor: torch.Tensor, *,
                  accepted: torch.Tensor, lands: torch.Tensor,
                  error: torch.Tensor) -> torch.Tensor:
        """The step size to attempt next, ``h_try · factor``, except after a step shortened
        to land on an output time (``lands``): accepted with a small error (< 0.5), it says
        nothing against the longer step ``h`` planned before, which is kept when the
        proposal is shorter. All ``(B,)``."""
        h_new = h_try * factor
        return torch.where(accepted & lands & (h_new.abs() < h.abs()) & (error < 0.5), h, h_new)


@dataclass(frozen=True, kw_only=True)
class PredictiveController(StepSizeController):
    """Gustafsson's predictive controller, as in Hairer & Wanner's RADAU5: the elementary
    factor times ``min(1, (h/h_prev)·(err_prev/err)^(1/(q+1)))``, where ``h_prev`` and
    ``err_prev`` belong to the last accepted step (factor 1 before the first one)
    (Gustafsson, "Control-theoretic techniques for stepsize selection in implicit Runge–Kutta
    methods", ACM TOMS 20 (1994) 496–517; Hairer & Wanner, *Solving ODEs II*, §IV.8).

    Accepted steps grow by at most ``max_factor``, rejected ones shrink by at most
    ``min_factor``; an accepted step whose factor is below ``keep_step_below`` keeps its size,
    so that an implicit method can reuse its LU factors.

    Parameters
    ----------
    safety, min_factor, max_factor : float
        As for :class:`StepSizeController`.
    keep_step_below : float
        Accepted steps whose factor is below it keep their size (non-negative; 0 never
        keeps a step).
    """

    uses_history: ClassVar[bool] = True

    keep_step_below: float = 1.2

    def __post_init__(self):
        super().__post_init__()
        check_real("keep_step_below", self.keep_step_below, nonnegative=True)

    def factor(self, error, exponent, *, accepted, h=None, h_prev=None, error_prev=None,
               safety=None):
        safety = self.safety if safety is None else safety
        err = error.detach().clamp_min(1e-10)
        if h_prev is None:
            factor = safety * err.pow(-exponent)
        else:
            have_prev = (h_prev != 0) & (error_prev > 0)
            predictive = torch.where(
                have_prev, h.abs() / h_prev.abs().clamp_min(1e-300)
                * (error_prev.clamp_min(1e-10) / err).pow(exponent), torch.ones_like(err))
            factor = safety * predictive.clamp(max=1) * err.pow(-exponent)
        return torch.where(accepted, factor.clamp(max=self.max_factor),
                           factor.clamp(min=self.min_factor))

    def keep(self, factor, accepted):
        return accepted & (factor < self.keep_step_below)


def initial_step(f, t0, y0, f0, order: int, rtol: float, atol: float,
                 direction: float) -> torch.Tensor:
    """Starting step per sample (Hairer, Nørsett & Wanner I, §II.4, algorithm of p. 169).

    ``y0`` and ``f0`` are ``(B, n)`` (real or complex); returns ``(B,)`` positive sizes
    (multiply by direction).
    """
    with torch.no_grad():
        scale = y0.abs().mul_(rtol).add_(atol)                 # atol + rtol·|y0|
        d0, d1 = rms(torch.stack([y0, f0]) / scale)
        h0 = torch.where(torch.stack([d0, d1]).lt_(1e-5).any(0), 1e-6, 0.01 * d0 / d1)
        step = h0 if direction > 0 else -h0                     # direction·h0, exactly
        y1 = y0 + step.unsqueeze(-1) * f0
        f1 = f(t0 + step, y1)
        d2 = rms((f1 - f0) / scale) / h0
        big = torch.maximum(d1, d2)
        h1 = torch.where(big <= 1e-15, (h0 * 1e-3).clamp_min_(1e-6),
                         (0.01 / big.clamp_min(1e-300)).pow_(1.0 / (order + 1)))
        return torch.minimum(100 * h0, h1)
