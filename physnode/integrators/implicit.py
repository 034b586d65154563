"""Implicit Runge–Kutta methods: BackwardEuler (fixed step) and RadauIIA5 (adaptive, stiff).

One stepper serves every implicit tableau: stage increments from :mod:`.newton`, the new state
``y + (bᵀA⁻¹ ⊗ I) Z``. Gradients of a step come from the implicit function theorem, not from
the Newton iterations: after convergence, ``Z ← Z* − M⁻¹ G(Z*, y, θ)`` with the exact stage
Jacobian ``M = ∂G/∂Z`` held constant, whose derivative is exactly ``−M⁻¹ ∂G/∂(y, θ)``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import mpmath
import numpy as np
import torch
from numpy.polynomial import legendre

from .._validation import IntegrationError
from .base import Integrator
from .explicit import rms
from .newton import Newton, jacobian, newton_matrix, newton_solve, stage_residual
from .tableau import ButcherTableau, collocation_tableau

_S6 = math.sqrt(6.0)
# Radau IIA of order 5 (Hairer & Wanner, Solving ODEs II, Table IV.5.6).
RADAU_IIA5 = ButcherTableau(
    a=(((88 - 7 * _S6) / 360, (296 - 169 * _S6) / 1800, (-2 + 3 * _S6) / 225),
       ((296 + 169 * _S6) / 1800, (88 + 7 * _S6) / 360, (-2 - 3 * _S6) / 225),
       ((16 - _S6) / 36, (16 + _S6) / 36, 1 / 9)),
    b=((16 - _S6) / 36, (16 + _S6) / 36, 1 / 9),
    c=((4 - _S6) / 10, (4 + _S6) / 10, 1.0), order=5)
BACKWARD_EULER = ButcherTableau(a=((1.0,),), b=(1.0,), c=(1.0,), order=1)


def radau_iia_nodes(stages: int) -> list:
    """Nodes of Radau IIA (40-digit mpmath values): the zeros of ``P_s(2x − 1) − P_{s−1}(2x − 1)``
    (Legendre polynomials), the last one at 1 (Hairer & Wanner II, §IV.5)."""
    series = np.zeros(stages + 1)
    series[-2:] = -1, 1
    guesses = (np.sort(legendre.legroots(series).real) + 1) / 2
    with mpmath.workdps(40):
        def radau(x):
            return mpmath.legendre(stages, 2 * x - 1) - mpmath.legendre(stages - 1, 2 * x - 1)
        return [mpmath.findroot(radau, float(x)) for x in guesses[:-1]] + [mpmath.mpf(1)]


RADAU_IIA9 = collocation_tableau(radau_iia_nodes(5), order=9)


@functools.cache
def radau_error_estimator(tableau: ButcherTableau) -> tuple[float, tuple[float, ...]]:
    """``γ`` and ``E`` of the embedded error estimate ``(γ/h − J)⁻¹ (f(y) + Σ E_i Z_i / h)``.

    ``γ`` is the real eigenvalue of ``A⁻¹`` (an odd number of stages has exactly one); the
    estimate is the difference to the embedded formula of order ``s`` that puts the weight
    ``1/γ`` on ``f(y)`` at the start of the step (Hairer & Wanner II, §IV.8, eq. 8.19–8.20).
    For three stages this gives RADAU5's ``E = (−13 ∓ 7√6, −1)/3``.
    """
    with mpmath.workdps(40):
        A_inv = mpmath.inverse(mpmath.matrix(tableau.a))
        gamma = min(mpmath.eig(A_inv, left=False, right=False), key=lambda z: abs(z.imag)).real
        # Quadrature conditions Σ b̂_i c_i^k + [k = 0]/γ = 1/(k + 1), k < s.
        s = tableau.stages
        powers = mpmath.matrix([[mpmath.mpf(ci) ** k for ci in tableau.c] for k in range(s)])
        b_hat = mpmath.lu_solve(powers, [mpmath.mpf(1) / (k + 1) - (k == 0) / gamma
                                         for k in range(s)])
        E = [gamma * sum((b_hat[i] - tableau.b[i]) * A_inv[i, j] for i in range(s))
             for j in range(s)]
        return float(gamma), tuple(float(e) for e in E)


def _weights_d(tableau: ButcherTableau, dtype, device):
    """``d = bᵀ A⁻¹`` so that ``y_new = y + Σ d_i Z_i`` (no extra evaluation needed)."""
    A, b, c, _ = tableau.tensors(dtype, device)
    return torch.linalg.solve(A.T, b)


def exact_stage_jacobians(f, t, y, h, c, Z, jac=None) -> torch.Tensor:
    """``∂f/∂y`` at every stage point; returns ``(B, s, n, n)``."""
    times = t.unsqueeze(-1) + h * c
    return jacobian(f, times, y.unsqueeze(-2) + Z, jac)


def implicit_function_correction(f, t, y, h, A, c, Z, jac=None) -> torch.Tensor:
    """``Z* − M⁻¹ G(Z*, y, θ)`` with ``M`` the exact, constant ``∂G/∂Z``: equal to ``Z*`` to the
    Newton tolerance, with the implicit-function-theorem derivative in ``y`` and in the
    parameters of ``f``."""
    B, s, n = Z.shape
    Z = Z.detach()
    M = newton_matrix(A, h, exact_stage_jacobians(f, t, y.detach(), h, c, Z, jac))
    G, _ = stage_residual(f, t, y, h, A, c, Z)
    LU, pivots = torch.linalg.lu_factor(M)
    return Z - torch.linalg.lu_solve(LU, pivots, G.reshape(B, s * n, 1)).reshape(B, s, n)


@dataclass(frozen=True)
class ImplicitRungeKutta(Integrator):
    """Fixed-step implicit Runge–Kutta method given by its tableau.

    The stage equations are solved by simplified Newton to round-off, so a symplectic tableau
    (Gauss–Legendre) gives a symplectic map up to round-off. A sample whose Newton iteration
    fails has its step split in two halves, recursively (at most 8 levels).
    """

    implicit = True
    tableau: ButcherTableau = None
    newton: Newton = Newton(max_iter=50)
    max_splits: int = 8

    @property
    def order(self) -> int:
        return self.tableau.order

    def step(self, f, t, y, h, cache=None, *, jac=None, needs_grad=False, stats=None,
             depth=0):
        """One step of size ``h`` (float) for ``y (B, n)`` at scalar time ``t``."""
        B, n = y.shape
        A, _, c, _ = self.tableau.tensors(y.dtype, y.device)
        t_b = t.expand(B) if isinstance(t, torch.Tensor) else torch.full(
            (B,), float(t), dtype=y.dtype, device=y.device)
        h_b = torch.full((B, 1), h, dtype=y.dtype, device=y.device)
        eps = torch.finfo(y.dtype).eps
        with torch.no_grad():
            J = jacobian(f, t_b, y, jac)
            LU, pivots = torch.linalg.lu_factor(newton_matrix(A, h_b, J))
            scale = 1 + y.abs()
            tol = self.newton.tol or 10 * eps
            Z, converged, _, _, _ = newton_solve(f, t_b, y, h_b, A, c, LU, pivots, scale,
                                                     tol, self.newton.max_iter, floor=tol)
        if stats is not None:
            stats["njev"] += 1
            stats["nlu"] += 1
        if needs_grad:
            Z = implicit_function_correction(f, t_b, y, h_b, A, c, Z, jac)
        y_new = y + _weights_d(self.tableau, y.dtype, y.device) @ Z
        if bool(converged.all()):
            return y_new, None
        if depth >= self.max_splits:
            bad = (~converged).nonzero().reshape(-1).tolist()
            raise IntegrationError(
                f"Newton's method did not converge for {self.name!r} at batch samples "
                f"{bad[:10]} near t={float(t):.6g} even after halving the step "
                f"{self.max_splits} times (step {h:.3g}); try a smaller dt", stats=stats,
                samples=bad, t=float(t))
        failed = (~converged).nonzero().reshape(-1)
        y_half, _ = self.step(f, t, y[failed], h / 2, jac=jac, needs_grad=needs_grad,
                              stats=stats, depth=depth + 1)
        y_sub, _ = self.step(f, t + h / 2, y_half, h / 2, jac=jac, needs_grad=needs_grad,
                             stats=stats, depth=depth + 1)
        return y_new.index_put((failed,), y_sub), None


@dataclass(frozen=True)
class BackwardEuler(ImplicitRungeKutta):
    """Backward (implicit) Euler: order 1, L-stable, fixed step; the simplest stiff solver."""

    name = "backward_euler"
    tableau: ButcherTableau = BACKWARD_EULER


class _Rows:
    """Row selection by a mask, with no gather or scatter when every row is selected."""

    def __init__(self, mask: torch.Tensor):
        self.everyone = bool(mask.all())
        self.index = None if self.everyone else mask.nonzero().reshape(-1)

    def take(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.everyone else x[self.index]

    def put(self, x: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        return values if self.everyone else x.index_put((self.index,), values)


def collocation_extrapolation(c) -> np.ndarray:
    """Matrices ``P_k`` (``(s+1, s, s)``) with ``Σ_k r^k P_k Z_prev`` the starting stages of the
    next step for a step-size ratio ``r = h/h_prev``.

    The previous step's collocation polynomial passes through ``(0, 0)`` and ``(c_j, Z_j)`` (in
    units of the previous step); the new stages sit at ``τ_i = 1 + c_i r`` and are taken
    relative to the new base point ``y_prev + Z_s``. Each entry is a polynomial of degree
    ``s`` in ``r``, found by solving a Vandermonde system once.
    """
    c = np.asarray(c, dtype=np.float64)
    s = len(c)
    nodes = np.concatenate([[0.0], c])

    def matrix(r):
        tau = 1 + c * r
        L = np.empty((s, s))
        for j in range(1, s + 1):
            others = np.delete(nodes, j)
            L[:, j - 1] = np.prod((tau[:, None] - others) / (nodes[j] - others), axis=1)
        L[:, -1] -= 1                                  # shift to the new base point
        return L

    ratios = np.arange(s + 1, dtype=np.float64)
    values = np.stack([matrix(r) for r in ratios])    # (s+1, s, s)
    vander = np.vander(ratios, s + 1, increasing=True)
    return np.linalg.solve(vander, values.reshape(s + 1, -1)).reshape(s + 1, s, s)


@dataclass(frozen=True)
class RadauIIA(Integrator):
    """Base of the Radau IIA methods, of order ``2s − 1`` (``s`` stages, odd): adaptive,
    L-stable, stiffly accurate implicit Runge–Kutta for stiff problems, after Hairer & Wanner's
    RADAU5 and RADAU (*Solving ODEs II*, §IV.8).

    Every batch sample has its own step size, Jacobian (reused across steps while Newton
    converges quickly), LU factorisation (reused while the step size is kept), Newton iteration
    started from the previous collocation polynomial, accept/reject decision and predictive
    (Gustafsson) step-size controller.
    """

    adaptive = True
    implicit = True
    tableau: ButcherTableau = None
    newton: Newton = Newton(max_iter=6)
    safety: float = 0.9
    min_factor: float = 0.2
    max_factor: float = 10.0
    #: growth factors below this keep the step size, so the LU factors can be reused
    keep_step_below: float = 1.2

    @property
    def order(self) -> int:
        return self.tableau.order

    @staticmethod
    @functools.lru_cache(maxsize=16)
    def _constants(tableau, dtype, device):
        """``γ``, the error weights and the extrapolation matrices (cached per method, dtype
        and device)."""
        gamma, E = radau_error_estimator(tableau)
        return (gamma, torch.tensor(E, dtype=dtype, device=device),
                torch.tensor(collocation_extrapolation(tableau.c), dtype=dtype, device=device))

    def _guess(self, cache, h, P):
        """Newton's starting stages from the previous collocation polynomial (zero when none)."""
        h_prev = cache["h_prev"]
        # h_prev == 0 (no previous step) gives r = ±inf or nan; those rows start at zero.
        r = (h / h_prev).nan_to_num(0.0, 0.0, 0.0)
        powers = torch.stack([r ** k for k in range(P.shape[0])], -1)       # (B, s+1)
        L = torch.tensordot(powers, P, dims=1)                              # (B, s, s)
        return L @ cache["Z_prev"]

    def init_cache(self, f, t, y, f0):
        B, n = y.shape
        s = self.tableau.stages
        zeros = y.new_zeros
        false = torch.zeros(B, dtype=torch.bool, device=y.device)
        return {"f0": f0.detach(), "J": zeros(B, n, n), "recompute": ~false,
                "jac_current": false, "rejected": ~false,
                "LU": zeros(B, s * n, s * n), "pivots": torch.ones(B, s * n, dtype=torch.int32,
                                                                   device=y.device),
                "LU_e": zeros(B, n, n), "pivots_e": torch.ones(B, n, dtype=torch.int32,
                                                               device=y.device),
                "lu_h": zeros(B), "Z_prev": zeros(B, s, n), "h_prev": zeros(B),
                "err_prev": zeros(B)}

    def _refresh(self, f, t, y, h, cache, jac, info):
        """Recompute flagged Jacobians, and LU factors wherever J or h changed."""
        A, _, c, _ = self.tableau.tensors(y.dtype, y.device)
        cache = dict(cache)
        recompute = cache["recompute"]
        if bool(recompute.any()):
            rows = _Rows(recompute)
            cache["J"] = rows.put(cache["J"], jacobian(f, rows.take(t), rows.take(y), jac))
            info["njev"] = recompute.long()
        stale = recompute | (cache["lu_h"] != h[:, 0])
        cache["jac_current"] = cache["jac_current"] | recompute
        if bool(stale.any()):
            rows = _Rows(stale)
            eye = torch.eye(y.shape[1], dtype=y.dtype, device=y.device)
            J, h_s = rows.take(cache["J"]), rows.take(h)
            LU, piv = torch.linalg.lu_factor(newton_matrix(A, h_s, J))
            gamma = self._constants(self.tableau, y.dtype, y.device)[0]
            LU_e, piv_e = torch.linalg.lu_factor(gamma / h_s.unsqueeze(-1) * eye - J)
            for key, value in (("LU", LU), ("pivots", piv), ("LU_e", LU_e),
                               ("pivots_e", piv_e), ("lu_h", h_s[:, 0])):
                cache[key] = rows.put(cache[key], value)
            info["nlu"] = stale.long()
        return cache

    def attempt(self, f, t, y, h, cache, scale_fn, *, rtol, jac=None, needs_grad=False):
        """One step attempt per sample; see :meth:`Dopri5.attempt`."""
        B, n = y.shape
        A, _, c, _ = self.tableau.tensors(y.dtype, y.device)
        eps = torch.finfo(y.dtype).eps
        long_zeros = torch.zeros(B, dtype=torch.long, device=y.device)
        info = {"nfev": long_zeros, "njev": long_zeros, "nlu": long_zeros}
        y_in = y
        with torch.no_grad():
            y = y.detach()
            cache = self._refresh(f, t, y, h, cache, jac, info)
            tol = self.newton.tol or max(10 * eps / rtol, min(0.03, rtol ** 0.5))
            _, E, P = self._constants(self.tableau, y.dtype, y.device)
            Z0 = self._guess(cache, h[:, 0], P)
            Z, converged, iters, rate, _ = newton_solve(
                f, t, y, h, A, c, cache["LU"], cache["pivots"], scale_fn(y, y), tol,
                self.newton.max_iter, Z0=Z0)
            info["nfev"] = iters * self.tableau.stages
            y_new = y + Z[:, -1]
            # Error estimate filtered through (γ/h − J)⁻¹ so stiff components are not
            # overestimated (Hairer & Wanner II, eq. IV.8.20); refined once after a rejection.
            ZE = (E @ Z) / h
            err = torch.linalg.lu_solve(cache["LU_e"], cache["pivots_e"],
                                        (cache["f0"] + ZE).unsqueeze(-1)).squeeze(-1)
            scale = scale_fn(y, y_new)
            norm = rms(err / scale)
            refine = converged & (norm > 1) & cache["rejected"]
            if bool(refine.any()):
                idx = refine.nonzero().reshape(-1)
                f_err = f(t[idx], y[idx] + err[idx])
                err_i = torch.linalg.lu_solve(cache["LU_e"][idx], cache["pivots_e"][idx],
                                              (f_err + ZE[idx]).unsqueeze(-1)).squeeze(-1)
                norm = norm.index_put((idx,), rms(err_i / scale[idx]))
                info["nfev"] = info["nfev"] + refine.long()
            norm = torch.where(converged & torch.isfinite(norm), norm,
                               torch.full_like(norm, math.inf))
            accepted = norm <= 1
            factor, keep = self._factor(norm, iters, h[:, 0], cache, converged)
            # One batched evaluation beats gathering the accepted rows; rejected rows keep f0.
            f_new = torch.where(accepted.unsqueeze(-1), f(t + h[:, 0], y_new), cache["f0"])
            info["nfev"] = info["nfev"] + accepted
        if needs_grad:
            y_new = y_in + implicit_function_correction(f, t, y_in, h, A, c, Z, jac)[:, -1]
        return y_new, norm, self._next_cache(cache, accepted, converged, iters, rate, f_new, Z,
                                             h[:, 0], norm, keep), factor, info

    def _factor(self, norm, iters, h, cache, converged):
        """Predictive step-size factor (Gustafsson, as in RADAU5) per sample."""
        exponent = 1 / (self.tableau.stages + 1)      # the estimate is O(h^(s+1))
        newton_safety = self.safety * (2 * self.newton.max_iter + 1) / (
            2 * self.newton.max_iter + iters.to(norm.dtype))
        err = norm.clamp_min(1e-10)
        have_prev = (cache["h_prev"] != 0) & (cache["err_prev"] > 0)
        predictive = torch.where(
            have_prev, h.abs() / cache["h_prev"].abs().clamp_min(1e-300)
            * (cache["err_prev"].clamp_min(1e-10) / err).pow(exponent), torch.ones_like(err))
        factor = newton_safety * predictive.clamp(max=1) * err.pow(-exponent)
        accepted = norm <= 1
        factor = torch.where(accepted, factor.clamp(max=self.max_factor),
                             factor.clamp(min=self.min_factor))
        # Small growth keeps h (and the LU factors) unless the Jacobian is refreshed anyway.
        keep = accepted & (factor < self.keep_step_below)
        factor = torch.where(keep, torch.ones_like(factor), factor)
        # Newton failure: refresh a stale Jacobian at the same step first, then halve the step.
        fail = torch.where(cache["jac_current"], torch.full_like(factor, 0.5),
                           torch.ones_like(factor))
        return torch.where(converged, factor, fail), keep

    @staticmethod
    def _next_cache(cache, accepted, converged, iters, rate, f_new, Z, h, norm, keep):
        slow = (iters > 2) & (rate > 1e-3)
        new = dict(cache)
        new["f0"] = f_new
        new["recompute"] = torch.where(accepted, slow, ~converged & ~cache["jac_current"])
        # After an accepted step J belongs to the old point.
        new["jac_current"] = cache["jac_current"] & ~accepted
        new["rejected"] = ~accepted
        new["Z_prev"] = torch.where(accepted[:, None, None], Z, cache["Z_prev"])
        new["h_prev"] = torch.where(accepted, h, cache["h_prev"])
        new["err_prev"] = torch.where(accepted, norm, cache["err_prev"])
        # A kept step size with an unchanged Jacobian keeps valid LU factors.
        new["lu_h"] = torch.where(accepted & ~keep | new["recompute"],
                                  torch.full_like(h, math.nan), cache["lu_h"])
        return new


@dataclass(frozen=True)
class RadauIIA5(RadauIIA):
    """Radau IIA of order 5 (3 stages): the workhorse for stiff problems at moderate
    tolerances, after Hairer & Wanner's RADAU5."""

    name = "radau5"
    tableau: ButcherTableau = RADAU_IIA5


@dataclass(frozen=True)
class RadauIIA9(RadauIIA):
    """Radau IIA of order 9 (5 stages): fewer, larger steps than ``radau5``; its error estimate
    is of order 5 instead of 3, which pays off from moderate tolerances on."""

    name = "radau9"
    tableau: ButcherTableau = RADAU_IIA9
