"""Masses of Hamiltonian models in velocity coordinates: how observed velocities ``q̇`` map to
momenta ``p = M(q) q̇``.

A model in velocity coordinates learns ``H(q, p)`` and moves ``(q, q̇)`` by the pullback of
``J∇H`` through the change of coordinates ``(q, q̇) ↦ (q, M(q) q̇)``:

    dq/dt = ∂H/∂p,    dq̇/dt = M⁻¹ (ṗ − (∂(M q̇)/∂q) · dq/dt),

so the motion is still Hamilton's in ``(q, p)`` for any mass. What a mass is, is an object
(:class:`UnitMass`, :class:`DiagonalMass`, :class:`ConfigurationMass`) that builds the module
(:class:`Mass`) the model holds; its ``config()`` is what a saved model records.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import ClassVar

import torch
from torch import nn
from torch.nn.functional import softplus

from .base import GAIN, NormalizedInput, check_architecture, mlp, mlp_jvp

#: ``softplus(GAIN · RAW_ONE) = 1``: where learned masses start.
RAW_ONE = math.log(math.e - 1) / GAIN
#: The least diagonal entry of a learned Cholesky factor (masses start at 1), so that
#: ``M(q)`` stays invertible in floating point wherever the network goes.
FLOOR = 1e-3


class Mass(nn.Module):
    """``p = M(q) q̇`` with ``M = L Lᵀ``, ``L`` lower triangular with a positive diagonal (so
    ``M`` is symmetric positive definite for every ``q``). Subclasses give :meth:`factor`
    (and, for speed, :meth:`factor_tangent`)."""

    #: Whether ``M`` depends on ``q`` (a constant one has a diagonal, ``HNN.mass``).
    varies: ClassVar[bool] = True

    def __init__(self, dof: int):
        super().__init__()
        self.dof = dof

    def factor(self, q: torch.Tensor) -> torch.Tensor:
        """``L(q)``, shape ``(*batch, dof, dof)``."""
        raise NotImplementedError

    def factor_tangent(self, q: torch.Tensor, w: torch.Tensor):
        """``(L(q), dL(q + εw)/dε at 0)`` (forward-mode autodiff unless overridden)."""
        return torch.func.jvp(self.factor, (q,), (w,))

    def matrix(self, q: torch.Tensor) -> torch.Tensor:
        """``M(q)``, shape ``(*batch, dof, dof)``, symmetric positive definite."""
        L = self.factor(q)
        return L @ L.transpose(-1, -2)

    def momenta(self, q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """``M(q) v``."""
        L = self.factor(q)
        return _matvec(L, _matvec(L.transpose(-1, -2), v))

    def velocity_rate(self, q, v, qdot, pdot) -> torch.Tensor:
        """``dv/dt = M⁻¹ (ṗ − (∂(M v)/∂q) · q̇)`` for states ``(q, v)`` moving at ``(q̇, ṗ)``
        in ``(q, p = M v)``."""
        L, dL = self.factor_tangent(q, qdot)
        u = _matvec(L.transpose(-1, -2), v)                        # Lᵀ v
        dM_v = _matvec(dL, u) + _matvec(L, _matvec(dL.transpose(-1, -2), v))
        return _solve_spd(L, pdot - dM_v)


class _ConstantDiagonal(Mass):
    varies = False

    def __init__(self, dof: int, learned: bool):
        super().__init__(dof)
        self.raw = nn.Parameter(torch.full((dof,), RAW_ONE)) if learned else None

    @property
    def diagonal(self) -> torch.Tensor:
        if self.raw is None:
            return torch.ones(self.dof)
        return softplus(GAIN * self.raw)

    def factor(self, q):
        return torch.diag_embed(self.diagonal.to(q).sqrt().expand(q.shape))

    def momenta(self, q, v):
        return self.diagonal.to(v) * v

    def velocity_rate(self, q, v, qdot, pdot):
        return pdot / self.diagonal.to(pdot)


class _LearnedFactor(Mass, NormalizedInput):
    """``L(q)``: diagonal ``FLOOR + softplus(GAIN · raw + n(q̃))``, strictly lower part
    ``n(q̃)``, from one network on normalised positions (angles as cosines and sines) whose
    last layer starts at zero, so ``M`` starts as the identity."""

    def __init__(self, dof, hidden, layers, activation, angles=()):
        super().__init__(dof)
        self.net = mlp(dof + len(angles), dof * (dof + 1) // 2, hidden, layers, activation)
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)
        self.raw = nn.Parameter(torch.full((dof,), math.log(math.expm1(1 - FLOOR)) / GAIN))
        self._register_normalization(dof, angles=angles)
        self.register_buffer("_rows", torch.tril_indices(dof, dof, -1)[0], persistent=False)
        self.register_buffer("_cols", torch.tril_indices(dof, dof, -1)[1], persistent=False)

    def _lower(self, diagonal, below):
        d = self.dof
        L = below.new_zeros(*below.shape[:-1], d, d)
        L[..., self._rows, self._cols] = below
        return L + torch.diag_embed(diagonal)

    def factor(self, q):
        out = self.net(self.features(q))
        d = self.dof
        return self._lower(FLOOR + softplus(GAIN * self.raw.to(out) + out[..., :d]),
                           out[..., d:])

    def factor_tangent(self, q, w):
        out, dout = mlp_jvp(self.net, self.features(q), self.feature_tangent(q, w))
        d = self.dof
        z = GAIN * self.raw.to(out) + out[..., :d]
        return (self._lower(FLOOR + softplus(z), out[..., d:]),
                self._lower(torch.sigmoid(z) * dout[..., :d], dout[..., d:]))


@dataclass(frozen=True)
class UnitMass:
    """``p = q̇``: no mass to learn (its scale is the energy's)."""

    kind: ClassVar[str] = "unit"

    def build(self, dof: int, angles: tuple = ()) -> Mass:
        return _ConstantDiagonal(dof, learned=False)

    def config(self) -> dict:
        return {"kind": self.kind, **asdict(self)}


@dataclass(frozen=True)
class DiagonalMass(UnitMass):
    """A learned constant diagonal mass, ``p_i = m_i q̇_i`` (``m_i > 0``, starting at 1). Only
    its ratio to ``H`` is identifiable from motion: ``(c m, c H)`` moves the same way."""

    kind: ClassVar[str] = "diagonal"

    def build(self, dof, angles=()):
        return _ConstantDiagonal(dof, learned=True)


@dataclass(frozen=True)
class ConfigurationMass(UnitMass):
    """A learned mass matrix that depends on the configuration, ``p = M(q) q̇`` with ``M(q)``
    symmetric positive definite for every ``q`` (a Cholesky factor from a network of the
    positions; angles enter as cosines and sines): the inertia of a double pendulum or of
    any linkage. Starts as the identity."""

    kind: ClassVar[str] = "configuration"
    hidden: int = 64
    layers: int = 2
    activation: str = "tanh"

    def __post_init__(self):
        check_architecture(self.hidden, self.layers)

    def build(self, dof, angles=()):
        return _LearnedFactor(dof, self.hidden, self.layers, self.activation, angles)


MASSES = {cls.kind: cls for cls in (UnitMass, DiagonalMass, ConfigurationMass)}


def mass_spec(value) -> UnitMass:
    """The mass object for ``value``: an object, or a saved ``config()`` dict."""
    if isinstance(value, UnitMass):
        return value
    if isinstance(value, dict) and value.get("kind") in MASSES:
        options = {k: v for k, v in value.items() if k != "kind"}
        return MASSES[value["kind"]](**options)
    raise TypeError(f"`mass` must be UnitMass(), DiagonalMass() or ConfigurationMass(...); "
                    f"got {type(value).__name__}")


def _matvec(A, x):
    return (A @ x.unsqueeze(-1)).squeeze(-1)


def _solve_spd(L, b):
    """``(L Lᵀ)⁻¹ b`` by two triangular solves."""
    z = torch.linalg.solve_triangular(L, b.unsqueeze(-1), upper=False)
    return torch.linalg.solve_triangular(L.transpose(-1, -2), z, upper=True).squeeze(-1)
