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
from .base import Integrator, real_dtype
from .explicit import combine, rms
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
        real = real_dtype(y.dtype)
        A, _, c, _ = self.tableau.tensors(real, y.device)
        t_b = t.expand(B) if isinstance(t, torch.Tensor) else torch.full(
            (B,), float(t), dtype=real, device=y.device)
        h_b = torch.full((B, 1), h, dtype=real, device=y.device)
        eps = torch.finfo(real).eps
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
        y_new = y + _weights_d(self.tableau, real, y.device).to(y.dtype) @ Z
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
class AdaptiveImplicit(Integrator):
    """What the adaptive implicit methods share: per sample, a Jacobian reused across steps
    while Newton converges quickly, LU factors reused while the step size is kept, a Newton
    tolerance derived from ``rtol``, the accept/reject decision and a predictive (Gustafsson)
    step-size controller (Hairer & Wanner II, §IV.8). A method supplies its matrices
    (:meth:`_factorise`), its exponent and :meth:`attempt`.
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

    def init_cache(self, f, t, y, f0):
        B, n = y.shape
        real = t.new_zeros                 # times, step sizes and norms are real
        false = torch.zeros(B, dtype=torch.bool, device=y.device)
        lu = self._factorise(y.new_zeros(B, n, n), real(B, 1) + 1)
        return {"f0": f0.detach(), "J": y.new_zeros(B, n, n), "recompute": ~false,
                "jac_current": false, "rejected": ~false, "lu_h": real(B), "h_prev": real(B),
                "err_prev": real(B), **lu, **self._kept(y)}

    def _kept(self, y) -> dict:
        """Initial per-sample values that :meth:`_next_cache` keeps from accepted steps."""
        return {}

    def _factorise(self, J, h) -> dict:
        """LU factors of the method's Newton matrices for ``J (B, n, n)``, ``h (B, 1)``."""
        raise NotImplementedError

    @staticmethod
    def _roundoff(rtol, dtype) -> float:
        """The weighted size of an increment at round-off: it stops Newton whatever the
        contraction rate (an exact starting guess gives two round-off increments, rate ≈ 1)."""
        return 10 * torch.finfo(real_dtype(dtype)).eps / rtol

    def _newton_tol(self, rtol, dtype) -> float:
        return self.newton.tol or max(self._roundoff(rtol, dtype), min(0.03, rtol ** 0.5))

    def _refresh(self, f, t, y, h, cache, jac, info):
        """Recompute flagged Jacobians, and LU factors wherever J or h changed."""
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
            h_s = rows.take(h)
            factors = self._factorise(rows.take(cache["J"]), h_s)
            for key, value in (*factors.items(), ("lu_h", h_s[:, 0])):
                cache[key] = rows.put(cache[key], value)
            info["nlu"] = stale.long()
        return cache

    def _factor(self, norm, iters, h, cache, converged):
        """Predictive step-size factor (Gustafsson, as in RADAU5) per sample."""
        exponent = self.error_exponent
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
    def _next_cache(cache, accepted, converged, iters, rate, f_new, h, norm, keep, kept=None):
        slow = (iters > 2) & (rate > 1e-3)
        new = dict(cache)
        new["f0"] = f_new
        new["recompute"] = torch.where(accepted, slow, ~converged & ~cache["jac_current"])
        # After an accepted step J belongs to the old point.
        new["jac_current"] = cache["jac_current"] & ~accepted
        new["rejected"] = ~accepted
        for key, value in (kept or {}).items():
            mask = accepted.reshape(-1, *(1,) * (value.ndim - 1))
            new[key] = torch.where(mask, value, cache[key])
        new["h_prev"] = torch.where(accepted, h, cache["h_prev"])
        new["err_prev"] = torch.where(accepted, norm, cache["err_prev"])
        # A kept step size with an unchanged Jacobian keeps valid LU factors.
        new["lu_h"] = torch.where(accepted & ~keep | new["recompute"],
                                  torch.full_like(h, math.nan), cache["lu_h"])
        return new


@dataclass(frozen=True)
class RadauIIA(AdaptiveImplicit):
    """Base of the Radau IIA methods, of order ``2s − 1`` (``s`` stages, odd): adaptive,
    L-stable, stiffly accurate implicit Runge–Kutta for stiff problems, after Hairer & Wanner's
    RADAU5 and RADAU (*Solving ODEs II*, §IV.8).

    The ``s`` stages are solved together (one ``sn × sn`` LU per sample); Newton starts from
    the previous step's collocation polynomial.
    """

    @property
    def error_exponent(self) -> float:
        return 1 / (self.tableau.stages + 1)      # the estimate is O(h^(s+1))

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
        return L.to(cache["Z_prev"].dtype) @ cache["Z_prev"]

    def _kept(self, y):
        return {"Z_prev": y.new_zeros(y.shape[0], self.tableau.stages, y.shape[1])}

    def _factorise(self, J, h):
        """``I − h (A ⊗ J)`` for the stages, ``γ/h − J`` for the error estimate."""
        A, _, _, _ = self.tableau.tensors(real_dtype(J.dtype), J.device)
        gamma = self._constants(self.tableau, real_dtype(J.dtype), J.device)[0]
        eye = torch.eye(J.shape[-1], dtype=J.dtype, device=J.device)
        LU, pivots = torch.linalg.lu_factor(newton_matrix(A, h, J))
        LU_e, pivots_e = torch.linalg.lu_factor(gamma / h.unsqueeze(-1) * eye - J)
        return {"LU": LU, "pivots": pivots, "LU_e": LU_e, "pivots_e": pivots_e}

    def attempt(self, f, t, y, h, cache, scale_fn, *, rtol, jac=None, needs_grad=False):
        """One step attempt per sample; see :meth:`Dopri5.attempt`."""
        B, n = y.shape
        A, _, c, _ = self.tableau.tensors(h.dtype, y.device)
        long_zeros = torch.zeros(B, dtype=torch.long, device=y.device)
        info = {"nfev": long_zeros, "njev": long_zeros, "nlu": long_zeros}
        y_in = y
        with torch.no_grad():
            y = y.detach()
            cache = self._refresh(f, t, y, h, cache, jac, info)
            _, E, P = self._constants(self.tableau, h.dtype, y.device)
            Z0 = self._guess(cache, h[:, 0], P)
            Z, converged, iters, rate, _ = newton_solve(
                f, t, y, h, A, c, cache["LU"], cache["pivots"], scale_fn(y, y),
                self._newton_tol(rtol, y.dtype), self.newton.max_iter, Z0=Z0,
                floor=self._roundoff(rtol, y.dtype))
            info["nfev"] = iters * self.tableau.stages
            y_new = y + Z[:, -1]
            # Error estimate filtered through (γ/h − J)⁻¹ so stiff components are not
            # overestimated (Hairer & Wanner II, eq. IV.8.20); refined once after a rejection.
            ZE = (E.to(Z.dtype) @ Z) / h
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
        return y_new, norm, self._next_cache(cache, accepted, converged, iters, rate, f_new,
                                             h[:, 0], norm, keep, {"Z_prev": Z}), factor, info


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


_G = 0.26
# Kværnø's ESDIRK 5(4), γ = 0.26: A. Kværnø, "Singly diagonally implicit Runge–Kutta methods
# with an explicit first stage", BIT 44 (2004) 489–502. Stiffly accurate: the solution is the
# last stage, the embedded order-4 solution the one before.
_KVAERNO5_A = (
    (0.0,),
    (_G, _G),
    (0.13, 0.84033320996790809, _G),
    (0.22371961478320505, 0.47675532319799699, -0.06470895363112615, _G),
    (0.16648564323248321, 0.10450018841591720, 0.03631482272098715, -0.13090704451073998, _G),
    (0.13855640231268224, 0.0, -0.04245337201752043, 0.02446657898003141, 0.61943039072480676,
     _G),
    (0.13659751177640291, 0.0, -0.05496908796538376, -0.04118626728321046, 0.62993304899016403,
     0.06962479448202728, _G),
)
KVAERNO5 = ButcherTableau(
    a=tuple(row + (0.0,) * (7 - len(row)) for row in _KVAERNO5_A), b=_KVAERNO5_A[-1],
    c=tuple(math.fsum(row) for row in _KVAERNO5_A), order=5,
    b_error=tuple(b - b_hat for b, b_hat in zip(_KVAERNO5_A[-1], _KVAERNO5_A[-2] + (0.0,))),
    error_order=4)


@dataclass(frozen=True)
class Kvaerno5(AdaptiveImplicit):
    """Kværnø's ESDIRK 5(4): adaptive, L-stable, stiffly accurate, 7 stages (the first explicit)
    solved one after another, each with the same ``n × n`` matrix ``I − hγJ``.

    Against ``radau5`` it trades more (cheaper) Newton solves for an LU ``s²`` times smaller:
    the better choice for large systems (neural-network fields with many state components).
    Stage ``i`` starts Newton from stage ``i − 1``; its derivative is taken as
    ``(z_i − base_i)/(hγ)``, not a new evaluation, which keeps Newton's error out of the stiff
    components (Hairer & Wanner II, §IV.8). The error is the difference of the last two stages.
    """

    name = "kvaerno5"
    tableau: ButcherTableau = KVAERNO5

    @property
    def error_exponent(self) -> float:
        return 1 / (self.tableau.error_order + 1)

    @property
    def gamma(self) -> float:
        return self.tableau.a[-1][-1]

    def _factorise(self, J, h):
        LU, pivots = torch.linalg.lu_factor(newton_matrix(self._diagonal(J), h, J))
        return {"LU": LU, "pivots": pivots}

    def _diagonal(self, like):
        return torch.full((1, 1), self.gamma, dtype=like.dtype, device=like.device)

    def _stages(self, y, h, k0, solve_stage):
        """Run the stages; ``solve_stage(i, base, k_prev)`` returns stage ``i``'s increment
        ``(B, n)``. Returns the last two stage values and the last stage derivative."""
        ks, z, z_prev = [k0], y, y
        for i in range(1, self.tableau.stages):
            base = combine(y, ks, h, self.tableau.a[i][:i])
            Z = solve_stage(i, base, ks[-1])
            z_prev, z = z, base + Z
            ks.append(Z / (self.gamma * h))
        return z, z_prev, ks[-1]

    def attempt(self, f, t, y, h, cache, scale_fn, *, rtol, jac=None, needs_grad=False):
        """One step attempt per sample; see :meth:`Dopri5.attempt`."""
        B, n = y.shape
        _, _, c, _ = self.tableau.tensors(h.dtype, y.device)
        diagonal = self._diagonal(h)
        long_zeros = torch.zeros(B, dtype=torch.long, device=y.device)
        info = {"nfev": long_zeros, "njev": long_zeros, "nlu": long_zeros}
        found = {}
        with torch.no_grad():
            y_d = y.detach()
            cache = self._refresh(f, t, y_d, h, cache, jac, info)
            tol, scale = self._newton_tol(rtol, y.dtype), scale_fn(y_d, y_d)
            converged = torch.ones(B, dtype=torch.bool, device=y.device)
            iters, rate = long_zeros, h.new_zeros(B)

            def newton_stage(i, base, k_prev):
                nonlocal converged, iters, rate
                # Start from the previous stage's derivative: Z = hγ f(z_i) ≈ hγ k_{i−1}.
                Z, ok, k, r, _ = newton_solve(
                    f, t, base, h, diagonal, c[i:i + 1], cache["LU"], cache["pivots"], scale,
                    tol, self.newton.max_iter, Z0=(self.gamma * h * k_prev).unsqueeze(-2),
                    floor=self._roundoff(rtol, y.dtype))
                converged, iters = converged & ok, torch.maximum(iters, k)
                rate = rate + r / (self.tableau.stages - 1)         # the mean over stages
                info["nfev"] = info["nfev"] + k
                found[i] = Z
                return Z[:, 0]

            y_new, y_hat, k_last = self._stages(y_d, h, cache["f0"], newton_stage)
            norm = rms((y_new - y_hat) / scale_fn(y_d, y_new))
            norm = torch.where(converged & torch.isfinite(norm), norm,
                               torch.full_like(norm, math.inf))
            accepted = norm <= 1
            factor, keep = self._factor(norm, iters, h[:, 0], cache, converged)
            # Stiffly accurate: the last stage's derivative is f at the new point.
            f_new = torch.where(accepted.unsqueeze(-1), k_last, cache["f0"])
        if needs_grad:
            # Implicit-function-theorem derivative of every stage, through the stage bases.
            def corrected_stage(i, base, _):
                return implicit_function_correction(f, t, base, h, diagonal, c[i:i + 1],
                                                    found[i], jac)[:, 0]

            y_new, _, _ = self._stages(y, h, f(t, y), corrected_stage)
        return y_new, norm, self._next_cache(cache, accepted, converged, iters, rate, f_new,
                                             h[:, 0], norm, keep), factor, info
