"""Explicit Runge–Kutta methods: Euler, Midpoint, RK4 (fixed step) and Dopri5 (adaptive).

One stage loop, :func:`rk_stages`, serves every tableau. Explicit methods are not symplectic:
on a conservative system their energy error grows with time (RK4: O(h⁴) per unit time, drifting).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction as Fr
from typing import ClassVar

import torch

from .._validation import check_instance
from .base import (
    AdaptiveIntegrator,
    Attempt,
    FixedStepIntegrator,
    SampleState,
    Tolerance,
    rms,
)
from .controllers import StepSizeController
from .tableau import ButcherTableau, tableau_from_fractions


def combine(y: torch.Tensor, ks, h, weights) -> torch.Tensor:
    """``y + h Σ_i w_i k_i`` skipping zero weights: one new tensor, then in-place updates of
    it (autograd-safe, since no term saves the accumulator)."""
    return _combine_terms(y, ks, h, [(i, w) for i, w in enumerate(weights) if w])


def _combine_terms(y: torch.Tensor, ks, h, terms) -> torch.Tensor:
    """:func:`combine` with the nonzero weights given as ``(index, weight)`` pairs."""
    if not terms:
        return y
    if isinstance(h, torch.Tensor):
        (i, w), *rest = terms
        y = torch.addcmul(y, ks[i], h, value=w)
        for i, w in rest:
            y.addcmul_(ks[i], h, value=w)
        return y
    (i, w), *rest = terms
    y = torch.add(y, ks[i], alpha=w * h)
    for i, w in rest:
        y.add_(ks[i], alpha=w * h)
    return y


def rk_stages(f, t, y, h, tableau: ButcherTableau, k0=None):
    """Stage derivatives ``k_i = f(t + c_i h, y + h Σ_{j<i} a_ij k_j)`` of an explicit tableau.

    ``t`` is a scalar tensor (fixed step) or a ``(B,)`` tensor with ``h`` a ``(B, 1)`` tensor
    (per-sample steps). ``k0``, when given, is ``f(t, y)`` (first same as last). Returns the
    list of stage derivatives and the last stage's state (the new solution when FSAL).
    """
    rows = tableau.stage_terms
    if isinstance(h, torch.Tensor):
        # All stage times at once, each (B, 1) as the field's time convention wants them:
        # t + c_i h, rounded as c_i · h then the sum, the same as one stage at a time.
        c = tableau.tensors(h.dtype, h.device)[2]
        times = (t.unsqueeze(-1) + h * c).unsqueeze(-1).unbind(-2)
    else:
        times = [t] + [t + ci * h for ci in tableau.c[1:]]
    ks = [f(times[0], y) if k0 is None else k0]
    yi = y
    for i in range(1, tableau.stages):
        yi = _combine_terms(y, ks, h, rows[i])
        ks.append(f(times[i], yi))
    return ks, yi


EULER_TABLEAU = tableau_from_fractions([[]], [1], [0], order=1)
MIDPOINT_TABLEAU = tableau_from_fractions([[], [Fr(1, 2)]], [0, 1], [0, Fr(1, 2)], order=2)
RK4_TABLEAU = tableau_from_fractions([[], [Fr(1, 2)], [0, Fr(1, 2)], [0, 0, 1]],
                             [Fr(1, 6), Fr(1, 3), Fr(1, 3), Fr(1, 6)],
                             [0, Fr(1, 2), Fr(1, 2), 1], order=4)
# Dormand & Prince (1980), "A family of embedded Runge-Kutta formulae", J. Comp. Appl. Math. 6.
_DOPRI5_A = [[], [Fr(1, 5)], [Fr(3, 40), Fr(9, 40)], [Fr(44, 45), Fr(-56, 15), Fr(32, 9)],
             [Fr(19372, 6561), Fr(-25360, 2187), Fr(64448, 6561), Fr(-212, 729)],
             [Fr(9017, 3168), Fr(-355, 33), Fr(46732, 5247), Fr(49, 176), Fr(-5103, 18656)],
             [Fr(35, 384), 0, Fr(500, 1113), Fr(125, 192), Fr(-2187, 6784), Fr(11, 84)]]
_DOPRI5_B = [Fr(35, 384), 0, Fr(500, 1113), Fr(125, 192), Fr(-2187, 6784), Fr(11, 84), 0]
# The continuous extension of order 4 (Hairer, Nørsett & Wanner I, §II.6, and their DOPRI5):
# y(θ) = y0 + θΔ + θ(1−θ)(hk₁ − Δ) + θ²(1−θ)(2Δ − hk₁ − hk₇) + θ²(1−θ)² h Σ dᵢkᵢ, Δ = y1 − y0,
# so bᵢ(θ) = θbᵢ + θ(1−θ)(δᵢ₁ − bᵢ) + θ²(1−θ)(2bᵢ − δᵢ₁ − δᵢ₇) + θ²(1−θ)² dᵢ. The order
# conditions of order 4 hold for every θ (tested).
_DOPRI5_D = [Fr(-12715105075, 11282082432), 0, Fr(87487479700, 32700410799),
             Fr(-10690763975, 1880347072), Fr(701980252875, 199316789632),
             Fr(-1453857185, 822651844), Fr(69997945, 29380423)]


def _dopri5_dense():
    """Rows ``i``: the coefficients of ``θ¹ … θ⁴`` in ``bᵢ(θ)`` (see above)."""
    rows = []
    for i, (b, d) in enumerate(zip(_DOPRI5_B, _DOPRI5_D)):
        first, last = int(i == 0), int(i == 6)
        # θ, θ(1−θ), θ²(1−θ), θ²(1−θ)² in powers θ¹ … θ⁴
        terms = [(b, (1, 0, 0, 0)), (first - b, (1, -1, 0, 0)),
                 (2 * b - first - last, (0, 1, -1, 0)), (d, (0, 1, -2, 1))]
        rows.append([sum(w * p[k] for w, p in terms) for k in range(4)])
    return rows


DOPRI5_TABLEAU = tableau_from_fractions(
    _DOPRI5_A, _DOPRI5_B, [0, Fr(1, 5), Fr(3, 10), Fr(4, 5), Fr(8, 9), 1, 1], order=5,
    b_hat=[Fr(5179, 57600), 0, Fr(7571, 16695), Fr(393, 640), Fr(-92097, 339200),
           Fr(187, 2100), Fr(1, 40)], error_order=4, dense=_dopri5_dense(), dense_order=4)




@dataclass(frozen=True, kw_only=True)
class ExplicitRungeKutta(FixedStepIntegrator):
    """Fixed-step explicit Runge–Kutta method given by its class's ``tableau``: ``s`` stage
    evaluations per step, one shared stage loop (:func:`rk_stages`)."""

    tableau: ClassVar[ButcherTableau]

    def step(self, field, t, y, h, carry=None):
        """One step of size ``h`` from ``(t, y)``; no carry."""
        ks, _ = rk_stages(field, t, y, h, self.tableau)
        return combine(y, ks, h, self.tableau.b), None


@dataclass(frozen=True, kw_only=True)
class Euler(ExplicitRungeKutta):
    """Forward Euler, ``y₁ = y₀ + h f(t₀, y₀)``: order 1, explicit, one evaluation per step;
    a ResNet block is one Euler step. Not A-stable: its stability region is the disc
    ``|1 + z| ≤ 1`` (``z = hλ``), so a decaying mode ``λ < 0`` needs ``h ≤ 2/|λ|`` (Hairer &
    Wanner, *Solving ODEs II*, §IV.2)."""

    name = "euler"
    tableau = EULER_TABLEAU


@dataclass(frozen=True, kw_only=True)
class Midpoint(ExplicitRungeKutta):
    """Explicit midpoint (RK2): order 2, two evaluations per step."""

    name = "midpoint"
    tableau = MIDPOINT_TABLEAU


@dataclass(frozen=True, kw_only=True)
class RK4(ExplicitRungeKutta):
    """The classical Runge–Kutta method: order 4, four evaluations per step, not symplectic."""

    name = "rk4"
    tableau = RK4_TABLEAU


@dataclass(frozen=True, kw_only=True)
class ExplicitState(SampleState):
    """Per-sample state of :class:`Dopri5`: the derivative at the current point (first same
    as last), and the last accepted step and error norm when the controller uses them."""

    k0: torch.Tensor
    h_prev: torch.Tensor | None = None
    error_prev: torch.Tensor | None = None


@dataclass(frozen=True, kw_only=True)
class Dopri5(AdaptiveIntegrator):
    """Dormand–Prince 5(4): adaptive explicit Runge–Kutta of order 5 with an embedded order-4
    error estimate, first same as last (6 evaluations per step). Each batch sample has its own
    step size and accept/reject decision. Reference: Dormand & Prince (1980); Hairer, Nørsett &
    Wanner, *Solving ODEs I*, §II.5. Dense output: the continuous extension of order 4
    (Hairer, Nørsett & Wanner I, §II.6), from the stages of the step (no extra evaluation).

    Parameters
    ----------
    controller : StepSizeController
        Step-size control (default: the elementary controller).
    """

    name = "dopri5"
    tableau: ClassVar[ButcherTableau] = DOPRI5_TABLEAU
    error_order = DOPRI5_TABLEAU.error_order
    dense_order = DOPRI5_TABLEAU.dense_order
    controller: StepSizeController = StepSizeController()

    def __post_init__(self):
        check_instance("controller", self.controller, StepSizeController)

    def init(self, field, t, y, f0):
        if self.controller.uses_history:
            zeros = t.new_zeros(t.shape)
            return ExplicitState(k0=f0, h_prev=zeros, error_prev=zeros)
        return ExplicitState(k0=f0)

    def attempt(self, field, t, y, h, state, tolerance: Tolerance) -> Attempt:
        # First same as last: the last stage is evaluated at the new solution.
        ks, y_new = rk_stages(field, t, y, h, self.tableau, k0=state.k0)
        error = _combine_terms(torch.zeros_like(y), ks, h, self.tableau.error_terms)
        norm = rms(error / tolerance.scale(y, y_new))
        accepted = norm <= 1
        k0 = torch.where(accepted.unsqueeze(-1), ks[-1], state.k0)
        factor = self.controller.factor(norm, self.error_exponent, accepted=accepted,
                                        h=None if state.h_prev is None else h[:, 0],
                                        h_prev=state.h_prev,
                                        error_prev=state.error_prev)
        keep = self.controller.keep(factor, accepted)
        if keep is not None:
            factor = torch.where(keep, torch.ones_like(factor), factor)
        if state.h_prev is None:
            state = ExplicitState(k0=k0)
        else:
            state = ExplicitState(k0=k0, h_prev=torch.where(accepted, h[:, 0], state.h_prev),
                                  error_prev=torch.where(accepted, norm, state.error_prev))
        nfev = torch.full_like(norm, self.tableau.stages - 1, dtype=torch.long)
        return Attempt(y=y_new, error=norm, accepted=accepted, factor=factor, state=state,
                       nfev=nfev, dense=ks)

    def interpolant(self, y, h, attempt):
        """The continuous extension of order 4, ``h Σ_i b_i(θ) k_i`` (the tableau's
        ``dense``): coefficients ``(B, 4, n)``."""
        P = self.tableau.dense_tensor(h.dtype, h.device).to(y.dtype)
        return torch.einsum("sm,sbn->bmn", P, torch.stack(attempt.dense)) * h.unsqueeze(-1)
