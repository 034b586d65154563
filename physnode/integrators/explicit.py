"""Explicit Runge–Kutta methods: Euler, Midpoint, RK4 (fixed step) and Dopri5 (adaptive).

One stage loop, :func:`rk_stages`, serves every tableau. Explicit methods are not symplectic:
on a conservative system their energy error grows with time (RK4: O(h⁴) per unit time, drifting).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction as Fr

import torch

from .base import Integrator
from .controllers import StepSizeController
from .tableau import ButcherTableau, tableau_from_fractions


def axpy(y: torch.Tensor, k: torch.Tensor, h, coefficient: float,
         inplace: bool = False) -> torch.Tensor:
    """``y + coefficient · h · k`` in one kernel; ``h`` is a float or a ``(B, 1)`` tensor."""
    if isinstance(h, torch.Tensor):
        add = torch.Tensor.addcmul_ if inplace else torch.addcmul
        return add(y, k, h, value=coefficient)
    add = torch.Tensor.add_ if inplace else torch.add
    return add(y, k, alpha=coefficient * h)


def combine(y: torch.Tensor, ks, h, weights) -> torch.Tensor:
    """``y + h Σ_i w_i k_i`` skipping zero weights: one new tensor, then in-place updates of
    it (autograd-safe, since no term saves the accumulator)."""
    first = True
    for k, w in zip(ks, weights):
        if w:
            y = axpy(y, k, h, w, inplace=not first)
            first = False
    return y


def rk_stages(f, t, y, h, tableau: ButcherTableau, k0=None):
    """Stage derivatives ``k_i = f(t + c_i h, y + h Σ_{j<i} a_ij k_j)`` of an explicit tableau.

    ``t`` is a scalar tensor (fixed step) or a ``(B,)`` tensor with ``h`` a ``(B, 1)`` tensor
    (per-sample steps). ``k0``, when given, is ``f(t, y)`` (first same as last). Returns the
    list of stage derivatives and the last stage's state (the new solution when FSAL).
    """
    h_t = h[..., 0] if isinstance(h, torch.Tensor) else h
    ks = [f(t, y) if k0 is None else k0]
    yi = y
    for i in range(1, tableau.stages):
        yi = combine(y, ks, h, tableau.a[i][:i])
        ks.append(f(t + tableau.c[i] * h_t, yi))
    return ks, yi


@dataclass(frozen=True)
class ExplicitRungeKutta(Integrator):
    """Fixed-step explicit Runge–Kutta method given by its tableau."""

    tableau: ButcherTableau = None  # set by each subclass

    @property
    def order(self) -> int:
        return self.tableau.order

    def step(self, f, t, y, h, cache=None):
        """One step of size ``h`` from ``(t, y)``; returns ``(y_new, cache)``."""
        ks, _ = rk_stages(f, t, y, h, self.tableau)
        return combine(y, ks, h, self.tableau.b), None


EULER_TABLEAU = tableau_from_fractions([[]], [1], [0], order=1)
MIDPOINT_TABLEAU = tableau_from_fractions([[], [Fr(1, 2)]], [0, 1], [0, Fr(1, 2)], order=2)
RK4_TABLEAU = tableau_from_fractions([[], [Fr(1, 2)], [0, Fr(1, 2)], [0, 0, 1]],
                             [Fr(1, 6), Fr(1, 3), Fr(1, 3), Fr(1, 6)],
                             [0, Fr(1, 2), Fr(1, 2), 1], order=4)
# Dormand & Prince (1980), "A family of embedded Runge-Kutta formulae", J. Comp. Appl. Math. 6.
DOPRI5_TABLEAU = tableau_from_fractions(
    [[], [Fr(1, 5)], [Fr(3, 40), Fr(9, 40)], [Fr(44, 45), Fr(-56, 15), Fr(32, 9)],
     [Fr(19372, 6561), Fr(-25360, 2187), Fr(64448, 6561), Fr(-212, 729)],
     [Fr(9017, 3168), Fr(-355, 33), Fr(46732, 5247), Fr(49, 176), Fr(-5103, 18656)],
     [Fr(35, 384), 0, Fr(500, 1113), Fr(125, 192), Fr(-2187, 6784), Fr(11, 84)]],
    [Fr(35, 384), 0, Fr(500, 1113), Fr(125, 192), Fr(-2187, 6784), Fr(11, 84), 0],
    [0, Fr(1, 5), Fr(3, 10), Fr(4, 5), Fr(8, 9), 1, 1], order=5,
    b_hat=[Fr(5179, 57600), 0, Fr(7571, 16695), Fr(393, 640), Fr(-92097, 339200),
           Fr(187, 2100), Fr(1, 40)], error_order=4)


@dataclass(frozen=True)
class Euler(ExplicitRungeKutta):
    """Forward Euler: order 1, explicit, A-stable only for tiny steps; a ResNet block is one
    Euler step."""

    name = "euler"
    tableau: ButcherTableau = EULER_TABLEAU


@dataclass(frozen=True)
class Midpoint(ExplicitRungeKutta):
    """Explicit midpoint (RK2): order 2, two evaluations per step."""

    name = "midpoint"
    tableau: ButcherTableau = MIDPOINT_TABLEAU


@dataclass(frozen=True)
class RK4(ExplicitRungeKutta):
    """The classical Runge–Kutta method: order 4, four evaluations per step, not symplectic."""

    name = "rk4"
    tableau: ButcherTableau = RK4_TABLEAU


@dataclass(frozen=True)
class Dopri5(Integrator):
    """Dormand–Prince 5(4): adaptive explicit Runge–Kutta of order 5 with an embedded order-4
    error estimate, first same as last (6 evaluations per step). Each batch sample has its own
    step size and accept/reject decision. Reference: Dormand & Prince (1980); Hairer, Nørsett &
    Wanner, *Solving ODEs I*, §II.5.
    """

    name = "dopri5"
    adaptive = True
    controller: StepSizeController = StepSizeController()
    tableau: ButcherTableau = DOPRI5_TABLEAU

    @property
    def order(self) -> int:
        return self.tableau.order

    @property
    def error_exponent(self) -> float:
        return 1.0 / (min(self.order, self.tableau.error_order) + 1)

    def init_cache(self, f, t, y, f0):
        return {"k0": f0}

    def attempt(self, f, t, y, h, cache, scale_fn, **_):
        """Try one step per sample: ``t (B,)``, ``y (B, n)``, ``h (B, 1)``.

        Returns ``(y_new, error_norm, cache, factor, info)``: the candidate states, the weighted
        error norms (accept where <= 1), the cache to keep (per sample: the new one where
        accepted), the step-size factor for the next attempt and per-sample counts.
        """
        # First same as last: the last stage is evaluated at the new solution.
        ks, y_new = rk_stages(f, t, y, h, self.tableau, k0=cache["k0"])
        error = combine(torch.zeros_like(y), ks, h, self.tableau.b_error)
        norm = rms(error / scale_fn(y, y_new))
        accepted = (norm <= 1).unsqueeze(-1)
        cache = {"k0": torch.where(accepted, ks[-1], cache["k0"])}
        factor = self.controller.factor(norm, self.error_exponent)
        nfev = torch.full_like(norm, self.tableau.stages - 1, dtype=torch.long)
        return y_new, norm, cache, factor, {"nfev": nfev}


def rms(x: torch.Tensor) -> torch.Tensor:
    """Root mean square of the magnitudes over the last dimension (the error norm of Hairer &
    Wanner); real for complex ``x``."""
    return torch.linalg.vector_norm(x, dim=-1) * x.shape[-1] ** -0.5
