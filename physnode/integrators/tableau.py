"""Butcher tableaus: frozen, validated when built.

A Runge–Kutta method is a tableau plus its family's shared stage loop (DESIGN convention 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import mpmath
import torch

_TOL = 1e-12


@dataclass(frozen=True)
class ButcherTableau:
    """Coefficients ``(A, b, c)`` of an ``s``-stage Runge–Kutta method.

    Parameters
    ----------
    a : tuple of tuples
        ``s × s`` stage matrix; strictly lower triangular for explicit methods.
    b : tuple
        Weights of the solution, summing to 1.
    c : tuple
        Nodes, equal to the row sums of ``a``.
    order : int
        Classical order of ``b``.
    b_error : tuple, optional
        ``b − b̂``: weights of the embedded error estimate of an adaptive pair.
    error_order : int, optional
        Order of the embedded solution ``b̂``; the step-size controller uses
        ``min(order, error_order) + 1`` as the exponent denominator.
    dense : tuple of tuples, optional
        A continuous extension ``y(t + θh) = y + h Σ_i b_i(θ) k_i``: row ``i`` holds the
        coefficients of ``θ¹, …, θᵐ`` in ``b_i(θ)``, so that ``Σ_i b_i(θ) = θ`` and
        ``b_i(1) = b_i`` (Hairer, Nørsett & Wanner I, §II.6).
    dense_order : int, optional
        Order of the continuous extension (its local error is ``O(h^(dense_order+1))``).

    Examples
    --------
    >>> from physnode.integrators.tableau import ButcherTableau
    >>> ButcherTableau(a=((0.0,),), b=(1.0,), c=(0.0,), order=1).explicit
    True
    """

    a: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]
    c: tuple[float, ...]
    order: int
    b_error: tuple[float, ...] | None = None
    error_order: int | None = None
    dense: tuple[tuple[float, ...], ...] | None = None
    dense_order: int | None = None

    def __post_init__(self):
        s = len(self.b)
        if len(self.a) != s or any(len(row) != s for row in self.a) or len(self.c) != s:
            raise ValueError(f"a tableau needs a {s}×{s} `a` and {s} nodes `c`; got "
                             f"{len(self.a)} rows of lengths {[len(r) for r in self.a]} and "
                             f"{len(self.c)} nodes")
        if abs(math.fsum(self.b) - 1) > _TOL:
            raise ValueError(f"tableau weights `b` must sum to 1; got {math.fsum(self.b)}")
        for i, (row, ci) in enumerate(zip(self.a, self.c)):
            if abs(math.fsum(row) - ci) > _TOL:
                raise ValueError(f"tableau row {i} of `a` sums to {math.fsum(row)}; expected the "
                                 f"node c[{i}] = {ci}")
        if self.b_error is not None:
            if len(self.b_error) != s or abs(math.fsum(self.b_error)) > _TOL:
                raise ValueError("tableau `b_error` (b − b̂) must have one entry per stage and "
                                 f"sum to 0; got {self.b_error}")
        if self.dense is not None:
            degree = len(self.dense[0]) if self.dense else 0
            columns = [math.fsum(row[k] for row in self.dense) for k in range(degree)]
            if (len(self.dense) != s or any(len(row) != degree for row in self.dense)
                    or any(abs(x - (k == 0)) > _TOL for k, x in enumerate(columns))
                    or any(abs(math.fsum(row) - bi) > _TOL
                           for row, bi in zip(self.dense, self.b))):
                raise ValueError("tableau `dense` must have one row of θ-coefficients per "
                                 "stage, with Σ_i b_i(θ) = θ and b_i(1) = b_i; got "
                                 f"{self.dense}")

    @property
    def stages(self) -> int:
        return len(self.b)

    @property
    def explicit(self) -> bool:
        return all(self.a[i][j] == 0 for i in range(self.stages) for j in range(i, self.stages))

    @cached_property
    def stage_terms(self) -> tuple[tuple[tuple[int, float], ...], ...]:
        """Per stage ``i``, the nonzero ``(j, a_ij)`` with ``j < i``: what an explicit stage
        loop adds up."""
        return tuple(tuple((j, w) for j, w in enumerate(row[:i]) if w)
                     for i, row in enumerate(self.a))

    @cached_property
    def error_terms(self) -> tuple[tuple[int, float], ...] | None:
        """The nonzero ``(i, b_error_i)``, or None without an error estimate."""
        if self.b_error is None:
            return None
        return tuple((i, w) for i, w in enumerate(self.b_error) if w)

    @cached_property
    def _cache(self) -> dict:
        return {}

    def tensors(self, dtype, device):
        """``(A, b, c, b_error)`` as tensors of the given dtype and device (cached)."""
        key = (dtype, device)
        if key not in self._cache:
            self._cache[key] = tuple(_as_tensor(x, dtype, device)
                                     for x in (self.a, self.b, self.c, self.b_error))
        return self._cache[key]

    def dense_tensor(self, dtype, device) -> torch.Tensor:
        """``dense`` as an ``(s, m)`` tensor of the given dtype and device (cached)."""
        key = ("dense", dtype, device)
        if key not in self._cache:
            self._cache[key] = _as_tensor(self.dense, dtype, device)
        return self._cache[key]


def _as_tensor(x, dtype, device):
    return None if x is None else torch.tensor(x, dtype=dtype, device=device)


def tableau_from_fractions(a, b, c, order, b_hat=None, error_order=None, dense=None,
                           dense_order=None) -> ButcherTableau:
    """Build a tableau from (lower-triangular, possibly ragged) rows of ``a`` and optionally the
    embedded weights ``b̂`` (converted to ``b_error = b − b̂``) and a continuous extension
    ``dense`` (rows of θ-coefficients, see :class:`ButcherTableau`)."""
    s = len(b)
    full = tuple(tuple(float(v) for v in row) + (0.0,) * (s - len(row)) for row in a)
    b_error = None if b_hat is None else tuple(float(x) - float(y) for x, y in zip(b, b_hat))
    dense = None if dense is None else tuple(tuple(map(float, row)) for row in dense)
    return ButcherTableau(full, tuple(map(float, b)), tuple(map(float, c)), order, b_error,
                          error_order, dense, dense_order)


def collocation_tableau(nodes, order: int) -> ButcherTableau:
    """The collocation method with ``nodes`` (numbers or mpmath values): ``a_ij = ∫₀^{c_i} ℓ_j``,
    ``b_j = ∫₀¹ ℓ_j`` with ``ℓ_j`` the Lagrange polynomials of the nodes (Hairer, Nørsett &
    Wanner I, §II.7). Solved at 40 digits, so every coefficient is correctly rounded."""
    with mpmath.workdps(40):
        c = [mpmath.mpf(x) for x in nodes]
        powers = mpmath.matrix([[cj ** k for cj in c] for k in range(len(c))])

        def integrals(upper):          # ∫₀^upper ℓ_j for every j, from Σ_j w_j c_j^k = ∫ x^k
            return mpmath.lu_solve(powers, [upper ** (k + 1) / (k + 1) for k in range(len(c))])

        a = tuple(tuple(float(x) for x in integrals(ci)) for ci in c)
        b = tuple(float(x) for x in integrals(mpmath.mpf(1)))
        return ButcherTableau(a, b, tuple(float(x) for x in c), order)
