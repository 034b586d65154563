"""Symplectic integrators for Hamiltonian states ``concat(q, p)``.

Splitting methods (explicit) alternate kicks ``p ← p + b_i h ṗ(q)`` and drifts
``q ← q + a_i h q̇(p)``; they are exactly symplectic when ``H = T(p) + V(q)`` is separable,
which they assume (``q̇`` must not depend on ``q`` nor ``ṗ`` on ``p``). A method is its list of
coefficients and one drift–kick stepper. Compositions of leapfrog (Yoshida 1990) raise the
order. For non-separable Hamiltonians use the implicit Gauss–Legendre collocation methods
(``ImplicitMidpoint`` = Gauss–Legendre 2, ``GaussLegendre4``, ``GaussLegendre6``), symplectic
for any ``H``. All keep the energy error bounded, with no drift, over exponentially long times
(Hairer, Lubich & Wanner, *Geometric Numerical Integration*, ch. VI and IX).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from .base import FixedStepIntegrator
from .implicit import ImplicitRungeKutta
from .tableau import ButcherTableau


def leapfrog_composition(weights) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Kick and drift coefficients of leapfrog steps of sizes ``w_i h`` in sequence, with
    adjacent half-kicks merged."""
    kicks, drifts = [weights[0] / 2], []
    for i, w in enumerate(weights):
        drifts.append(w)
        kicks.append((w + weights[i + 1]) / 2 if i + 1 < len(weights) else w / 2)
    return tuple(kicks), tuple(drifts)


@dataclass(frozen=True, kw_only=True)
class Splitting(FixedStepIntegrator):
    """Kick–drift splitting ``K(b₀) D(a₀) K(b₁) … D(a_{m−1}) K(b_m)`` for separable
    Hamiltonians.

    The final kick's force is evaluated at the new positions; with a separable ``H`` it equals
    the next step's first force, so it is cached (first same as last). Time advances in the
    drifts: kicks take the time at which they act, drifts the middle of their interval, which
    keeps the order for time-dependent separable fields ``q̇(p, t)``, ``ṗ(q, t)``.
    """

    symplectic = True
    #: kick coefficients ``b_0 … b_m`` and drift coefficients ``a_0 … a_{m−1}``
    kicks: ClassVar[tuple[float, ...]]
    drifts: ClassVar[tuple[float, ...]]

    def step(self, field, t, y, h, carry=None):
        """One step of size ``h``; ``carry`` is the force ``ṗ`` at the current positions
        (returned for the next step)."""
        f = field
        dof = y.shape[-1] // 2
        q, p = y[..., :dof], y[..., dof:]
        force, time = carry, t
        for i, b in enumerate(self.kicks):
            if b:
                if force is None:
                    force = f(time, torch.cat([q, p], -1))[..., dof:]
                p = torch.add(p, force, alpha=b * h)
            if i < len(self.drifts):
                # A time-dependent velocity is taken at the middle of the drift: the drift
                # stays symmetric, so compositions keep their order.
                velocity = f(time + self.drifts[i] * h / 2, torch.cat([q, p], -1))[..., :dof]
                q = torch.add(q, velocity, alpha=self.drifts[i] * h)
                time = time + self.drifts[i] * h
                force = None
        if force is None:
            force = f(time, torch.cat([q, p], -1))[..., dof:]
        return torch.cat([q, p], -1), force


@dataclass(frozen=True, kw_only=True)
class SymplecticEuler(Splitting):
    """Symplectic Euler (kick then drift): order 1, explicit, symplectic for separable H."""

    name = "symplectic_euler"
    order = 1
    kicks = (1.0, 0.0)
    drifts = (1.0,)


@dataclass(frozen=True, kw_only=True)
class StormerVerlet(Splitting):
    """Störmer–Verlet / leapfrog, kick–drift–kick: order 2, explicit, symmetric, symplectic for
    separable H; one force and one velocity evaluation per step."""

    name = "leapfrog"
    order = 2
    reversible = True
    kicks = (0.5, 0.5)
    drifts = (1.0,)


_CBRT2 = 2 ** (1 / 3)
_Y4 = (1 / (2 - _CBRT2), -_CBRT2 / (2 - _CBRT2), 1 / (2 - _CBRT2))
# Yoshida (1990), Phys. Lett. A 150, "solution A" of the 6th-order triple-jump composition.
_W6 = (0.784513610477560, 0.235573213359357, -1.17767998417887)
_Y6 = _W6 + (1 - 2 * math.fsum(_W6),) + _W6[::-1]


@dataclass(frozen=True, kw_only=True)
class Yoshida4(Splitting):
    """Yoshida's 4th-order composition of three leapfrog steps (Yoshida 1990): explicit,
    symplectic for separable H, three force evaluations per step."""

    name = "yoshida4"
    order = 4
    reversible = True
    kicks, drifts = leapfrog_composition(_Y4)


@dataclass(frozen=True, kw_only=True)
class Yoshida6(Splitting):
    """Yoshida's 6th-order composition of seven leapfrog steps (solution A, Yoshida 1990):
    explicit, symplectic for separable H, seven force evaluations per step."""

    name = "yoshida6"
    order = 6
    reversible = True
    kicks, drifts = leapfrog_composition(_Y6)


_S3, _S15 = math.sqrt(3.0), math.sqrt(15.0)
GAUSS_LEGENDRE2 = ButcherTableau(a=((0.5,),), b=(1.0,), c=(0.5,), order=2)
GAUSS_LEGENDRE4 = ButcherTableau(
    a=((0.25, 0.25 - _S3 / 6), (0.25 + _S3 / 6, 0.25)), b=(0.5, 0.5),
    c=(0.5 - _S3 / 6, 0.5 + _S3 / 6), order=4)
GAUSS_LEGENDRE6 = ButcherTableau(
    a=((5 / 36, 2 / 9 - _S15 / 15, 5 / 36 - _S15 / 30),
       (5 / 36 + _S15 / 24, 2 / 9, 5 / 36 - _S15 / 24),
       (5 / 36 + _S15 / 30, 2 / 9 + _S15 / 15, 5 / 36)),
    b=(5 / 18, 4 / 9, 5 / 18), c=(0.5 - _S15 / 10, 0.5, 0.5 + _S15 / 10), order=6)


@dataclass(frozen=True, kw_only=True)
class ImplicitMidpoint(ImplicitRungeKutta):
    """Implicit midpoint rule (Gauss–Legendre, 1 stage): order 2, symplectic for any H,
    A-stable, symmetric."""

    name = "implicit_midpoint"
    symplectic = True
    reversible = True
    tableau = GAUSS_LEGENDRE2


@dataclass(frozen=True, kw_only=True)
class GaussLegendre4(ImplicitRungeKutta):
    """Gauss–Legendre collocation, 2 stages: order 4, symplectic for any H, A-stable."""

    name = "gauss_legendre4"
    symplectic = True
    reversible = True
    tableau = GAUSS_LEGENDRE4


@dataclass(frozen=True, kw_only=True)
class GaussLegendre6(ImplicitRungeKutta):
    """Gauss–Legendre collocation, 3 stages: order 6, symplectic for any H, A-stable."""

    name = "gauss_legendre6"
    symplectic = True
    reversible = True
    tableau = GAUSS_LEGENDRE6
