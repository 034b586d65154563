"""Implicit Runge–Kutta methods for stiff problems.

* Fixed step, :class:`ImplicitRungeKutta`: :class:`BackwardEuler` here, and the Gauss–Legendre
  methods of :mod:`.symplectic` on the same stepper. The stages are solved by simplified
  Newton to round-off; a sample whose Newton iteration fails has its step halved.
* Adaptive, :class:`AdaptiveImplicit`: the Radau IIA methods ``radau5`` and ``radau9``
  (:class:`RadauIIA5`, :class:`RadauIIA9`: all stages at once, in the eigenbasis of ``A⁻¹``:
  one real and ``(s − 1)/2`` complex ``n × n`` LUs) and
  Kværnø's ESDIRK ``kvaerno5`` (:class:`Kvaerno5`: stages in turn, one ``n × n`` LU). They
  share one attempt (:meth:`AdaptiveImplicit.attempt`): per-sample Jacobian and LU reuse,
  a Newton tolerance from ``rtol``, the error test and the
  :class:`~physnode.integrators.controllers.PredictiveController`; a method supplies its
  Newton matrices, its stage solve, its error estimate and its differentiable step.

Gradients of a step come from the implicit function theorem, not from the Newton iterations:
after convergence, ``Z ← Z* − M⁻¹ G(Z*, y, θ)`` with the exact stage Jacobian ``M = ∂G/∂Z``
held constant, whose derivative is exactly ``−M⁻¹ ∂G/∂(y, θ)``.
"""

from __future__ import annotations

import functools
import math
from abc import abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import mpmath
import numpy as np
import torch
from numpy.polynomial import legendre

from .._validation import IntegrationError, check_instance, check_int
from .base import (
    AdaptiveIntegrator,
    Attempt,
    Field,
    FixedStepIntegrator,
    SampleState,
    Tolerance,
    real_dtype,
    rms,
)
from .controllers import PredictiveController, StepSizeController
from .dense import hermite
from .explicit import combine
from .linalg import DenseLU, SparseLU, shifted_lu
from .newton import (
    Newton,
    dense_solver,
    jacobian,
    newton_matrix,
    newton_solve,
    stage_residual,
)
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


@functools.cache
def radau_eigensystem(tableau: ButcherTableau) -> tuple:
    """``(λ, V, V⁻¹)`` with ``A⁻¹ = V diag(λ) V⁻¹``, as tuples of Python complex numbers: the
    real eigenvalue ``γ`` first (its eigenvector scaled real), then one of each complex pair
    (positive imaginary part), then their conjugates (conjugate eigenvectors). The Newton
    matrix ``I − h (A ⊗ J)`` then splits into ``(λₖ/h − J)`` of size ``n`` (Hairer & Wanner II,
    §IV.8): for real states one real and ``(s − 1)/2`` complex systems."""
    with mpmath.workdps(40):
        values, vectors = mpmath.eig(mpmath.inverse(mpmath.matrix(tableau.a)))
        s = tableau.stages
        order = sorted(range(s), key=lambda k: abs(values[k].imag))
        real, upper = order[0], [k for k in order[1:] if values[k].imag > 0]
        column = [vectors[i, real] for i in range(s)]
        phase = max(column, key=abs)
        columns = [[mpmath.re(v / phase) for v in column]]
        columns += [[vectors[i, k] for i in range(s)] for k in upper]
        columns += [[mpmath.conj(v) for v in c] for c in columns[1:]]
        lam = [values[real].real] + [values[k] for k in upper]
        lam += [mpmath.conj(x) for x in lam[1:]]
        V = mpmath.matrix([[columns[j][i] for j in range(s)] for i in range(s)])
        V_inv = mpmath.inverse(V)

        def convert(m):
            return tuple(tuple(complex(m[i, j]) for j in range(s)) for i in range(s))

        return tuple(complex(x) for x in lam), convert(V), convert(V_inv)


def _weights_d(tableau: ButcherTableau, dtype, device):
    """``d = bᵀ A⁻¹`` so that ``y_new = y + Σ d_i Z_i`` (no extra evaluation needed)."""
    A, b, c, _ = tableau.tensors(dtype, device)
    return torch.linalg.solve(A.T, b)


def exact_stage_jacobians(field: Field, t, y, h, c, Z) -> torch.Tensor:
    """``∂f/∂y`` at every stage point; returns ``(B, s, n, n)``."""
    times = t.unsqueeze(-1) + h * c
    return jacobian(field, times, y.unsqueeze(-2) + Z, field.jac, field.sparsity)


def implicit_function_correction(field: Field, t, y, h, A, c, Z) -> torch.Tensor:
    """``Z* − M⁻¹ G(Z*, y, θ)`` with ``M`` the exact, constant ``∂G/∂Z``: equal to ``Z*`` to the
    Newton tolerance, with the implicit-function-theorem derivative in ``y`` and in the
    parameters of ``f``."""
    Z = Z.detach()
    M = newton_matrix(A, h, exact_stage_jacobians(field, t, y.detach(), h, c, Z))
    G, _ = stage_residual(field, t, y, h, A, c, Z)
    return Z - dense_solver(DenseLU.factor(M))(G)


@dataclass(frozen=True, kw_only=True)
class ImplicitRungeKutta(FixedStepIntegrator):
    """Fixed-step implicit Runge–Kutta method given by its class's ``tableau``.

    The stage equations are solved by simplified Newton to round-off, so a symplectic tableau
    (Gauss–Legendre) gives a symplectic map up to round-off. A sample whose Newton iteration
    fails has its step split in two halves, recursively (at most ``max_splits`` levels).

    Parameters
    ----------
    newton : Newton
        Options of the Newton iteration (default: up to 50 iterations, to round-off).
    max_splits : int
        Halvings of a step whose Newton iteration fails before
        :class:`physnode.IntegrationError`.
    """

    implicit = True
    tableau: ClassVar[ButcherTableau]
    newton: Newton = Newton(max_iter=50)
    max_splits: int = 8

    def __post_init__(self):
        check_instance("newton", self.newton, Newton)
        check_int("max_splits", self.max_splits, minimum=0)

    def step(self, field, t, y, h, carry=None):
        """One step of size ``h`` (float) for ``y (B, n)`` at scalar time ``t``; no carry."""
        return self._step(field, t, y, h, 0), None

    def _step(self, field, t, y, h, depth):
        B, n = y.shape
        real = real_dtype(y.dtype)
        A, _, c, _ = self.tableau.tensors(real, y.device)
        t_b = t.expand(B) if isinstance(t, torch.Tensor) else torch.full(
            (B,), float(t), dtype=real, device=y.device)
        h_b = torch.full((B, 1), h, dtype=real, device=y.device)
        eps = torch.finfo(real).eps
        with torch.no_grad():
            J = field.jacobian(t_b, y)
            lu = DenseLU.factor(newton_matrix(A, h_b, J))
            field.nlu += field.counting
            scale = 1 + y.abs()
            tol = self.newton.tol or 10 * eps
            Z, converged, _, _, _ = newton_solve(field, t_b, y, h_b, A, c,
                                                 dense_solver(lu), scale, tol,
                                                 self.newton.max_iter, floor=tol)
        if field.needs_grad:
            Z = implicit_function_correction(field, t_b, y, h_b, A, c, Z)
        y_new = y + _weights_d(self.tableau, real, y.device).to(y.dtype) @ Z
        if bool(converged.all()):
            return y_new
        if depth >= self.max_splits:
            bad = (~converged).nonzero().reshape(-1).tolist()
            raise IntegrationError(
                f"Newton's method did not converge for {self.name!r} at batch samples "
                f"{bad[:10]} near t={float(t):.6g} even after halving the step "
                f"{self.max_splits} times (step {h:.3g}); try a smaller dt",
                stats=field.counts(), samples=bad, t=float(t))
        failed = (~converged).nonzero().reshape(-1)
        part = field.take(failed)
        y_half = self._step(part, t, y[failed], h / 2, depth + 1)
        y_sub = self._step(part, t + h / 2, y_half, h / 2, depth + 1)
        return y_new.index_put((failed,), y_sub)


@dataclass(frozen=True, kw_only=True)
class BackwardEuler(ImplicitRungeKutta):
    """Backward (implicit) Euler, ``y₁ = y₀ + h f(t₁, y₁)``: order 1, L-stable, fixed step;
    the simplest stiff solver (Hairer & Wanner, *Solving ODEs II*, §IV.3)."""

    name = "backward_euler"
    tableau = BACKWARD_EULER


class _Rows:
    """Row selection by a mask, with no gather or scatter when every row is selected."""

    def __init__(self, mask: torch.Tensor):
        self.everyone = bool(mask.all())
        self.index = None if self.everyone else mask.nonzero().reshape(-1)

    def take(self, x):
        """The selected rows of a tensor, or the :class:`Field` of the selected rows."""
        if self.everyone:
            return x
        return x.take(self.index) if isinstance(x, Field) else x[self.index]

    def put(self, x, values):
        """``x`` (a tensor or LU factors) with the selected rows replaced by ``values``."""
        if self.everyone:
            return values
        if isinstance(x, torch.Tensor):
            return x.index_put((self.index,), values)
        return x.put(self.index, values)


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


@dataclass(frozen=True, kw_only=True)
class ImplicitState(SampleState):
    """Per-sample state of an adaptive implicit method between attempts.

    Attributes
    ----------
    f0 : torch.Tensor
        ``f`` at the current point ``(B, n)``.
    J : torch.Tensor
        The Jacobian in use ``(B, n, n)``; ``recompute`` flags the samples that need a new
        one before the next attempt, ``jac_current`` those whose ``J`` belongs to the
        current point.
    rejected : torch.Tensor
        Whether the last attempt was rejected.
    lu_h : torch.Tensor
        The step size the LU factors were computed with (NaN: refactor).
    h_prev, error_prev : torch.Tensor
        Step and error norm of the last accepted step (0 before the first), for the
        controller and the starting guesses.
    lu : DenseLU or SparseLU
        LU factors of the method's Newton matrices of the stages (``I − hγJ`` for
        ``kvaerno5``, batch ``(B,)``; for Radau, the complex ``λₖ/h − J``, batch ``(B, m)``):
        sparse with a sparsity pattern on the CPU (:mod:`~physnode.integrators.linalg`).
    """

    f0: torch.Tensor
    J: torch.Tensor
    recompute: torch.Tensor
    jac_current: torch.Tensor
    rejected: torch.Tensor
    lu_h: torch.Tensor
    h_prev: torch.Tensor
    error_prev: torch.Tensor
    lu: DenseLU | SparseLU


@dataclass(frozen=True, kw_only=True)
class Stages:
    """The outcome of one method's stage solve, inside one attempt (all per sample).

    Attributes
    ----------
    y_new : torch.Tensor
        The candidate state ``(B, n)``.
    converged : torch.Tensor
        Whether Newton converged ``(B,)``.
    iterations : torch.Tensor
        Newton iterations ``(B,)`` (the most over stages solved in turn).
    rate : torch.Tensor
        Newton's contraction rate ``(B,)``.
    nfev : torch.Tensor
        Evaluations of ``f`` ``(B,)``.
    """

    y_new: torch.Tensor
    converged: torch.Tensor
    iterations: torch.Tensor
    rate: torch.Tensor
    nfev: torch.Tensor


@dataclass(frozen=True, kw_only=True)
class AdaptiveImplicit(AdaptiveIntegrator):
    """What the adaptive implicit methods share: per sample, a Jacobian reused across steps
    while Newton converges quickly, LU factors reused while the step size is kept, a Newton
    tolerance derived from ``rtol``, the accept/reject decision and the step-size controller
    (by default Gustafsson's predictive one, as in RADAU5: Hairer & Wanner II, §IV.8).

    :meth:`attempt` is the one template; a method supplies its Newton matrices
    (:meth:`_factorise`), its stage solve (:meth:`_solve_stages`), its error estimate
    (:meth:`_error`), the derivative at the new point (:meth:`_new_derivative`) and its
    differentiable step (:meth:`_differentiable_step`).

    Parameters
    ----------
    newton : Newton
        Options of the Newton iteration (default: at most 6 iterations, tolerance from
        ``rtol``).
    controller : StepSizeController
        Step-size control (default: :class:`PredictiveController`). After slow Newton
        convergence its safety factor is lowered per sample, and a Newton failure refreshes a
        stale Jacobian at the same step before it halves the step.
    """

    implicit = True
    tableau: ClassVar[ButcherTableau]
    dense_order = 3                               # the cubic Hermite interpolant
    #: the type of the per-sample state
    state_type: ClassVar[type[ImplicitState]] = ImplicitState
    newton: Newton = Newton(max_iter=6)
    controller: StepSizeController = PredictiveController()

    def __post_init__(self):
        check_instance("newton", self.newton, Newton)
        check_instance("controller", self.controller, StepSizeController)

    def init(self, field, t, y, f0) -> ImplicitState:
        B, n = y.shape
        real = t.new_zeros                 # times, step sizes and norms are real
        false = torch.zeros(B, dtype=torch.bool, device=y.device)
        # The first attempt refactors every sample (``recompute`` is set), so dense factors
        # start as placeholders of the right kind and batch, of 1 × 1 matrices, instead of
        # factors of n × n zeros; sparse ones are cheap and keep their kind.
        sparse = field.sparsity is not None and y.device.type == "cpu"
        size = n if sparse else 1
        lu = self._factorise(y.new_zeros(B, size, size), real(B, 1) + 1,
                             field.sparsity if sparse else None)
        return self.state_type(f0=f0.detach(), J=y.new_zeros(B, n, n), recompute=~false,
                               jac_current=false, rejected=~false, lu_h=real(B),
                               h_prev=real(B), error_prev=real(B), **lu, **self._kept(y))

    def attempt(self, field, t, y, h, state, tolerance: Tolerance) -> Attempt:
        """One step attempt per sample (see :meth:`AdaptiveIntegrator.attempt`): refresh
        flagged Jacobians and stale LU factors, solve the stages, estimate the error, decide,
        and propose the next step size; the differentiable step is built afterwards, only
        when ``field.needs_grad``."""
        y_in = y
        with torch.no_grad():
            y = y.detach()
            state, njev, nlu = self._refresh(field, t, y, h, state)
            stages = self._solve_stages(field, t, y, h, state, tolerance)
            norm, nfev_error = self._error(field, t, y, h, state, stages, tolerance)
            norm = torch.where(stages.converged & torch.isfinite(norm), norm,
                               torch.full_like(norm, math.inf))
            accepted = norm <= 1
            factor, keep = self._step_factor(norm, accepted, stages, h[:, 0], state)
            f_end, nfev_new = self._new_derivative(field, t, h, stages, accepted)
            dense = self._dense_data(state, stages, f_end)
            f_new = torch.where(accepted.unsqueeze(-1), f_end, state.f0)
            nfev = stages.nfev
            for extra in (nfev_error, nfev_new):
                if extra is not None:
                    nfev = nfev + extra
        y_new = stages.y_new
        if field.needs_grad:
            y_new, dense = self._differentiable_step(field, t, y_in, h, stages)
        state = self._next_state(state, stages, accepted, f_new, h[:, 0], norm, keep)
        return Attempt(y=y_new, error=norm, accepted=accepted, factor=factor, state=state,
                       nfev=nfev, njev=njev, nlu=nlu, dense=dense)

    def interpolant(self, y, h, attempt):
        """The cubic Hermite polynomial through the ends of the step and their derivatives
        (order 3): coefficients ``(B, 3, n)``, differentiable when the step is."""
        f0, f1 = attempt.dense
        return hermite(y, attempt.y, f0, f1, h.to(y.dtype))

    # What a method supplies --------------------------------------------------------------

    def _kept(self, y) -> dict:
        """Initial values of the method's own state fields (kept from accepted steps)."""
        return {}

    @abstractmethod
    def _factorise(self, J, h, sparsity) -> dict:
        """LU factors of the method's Newton matrices for ``J (B, n, n)``, ``h (B, 1)``, by
        state field name (sparse with a :class:`~physnode.integrators.linalg.Sparsity`)."""

    @abstractmethod
    def _solve_stages(self, field, t, y, h, state, tolerance) -> Stages:
        """Solve the stage equations per sample (without a graph) from the refreshed
        ``state``."""

    @abstractmethod
    def _error(self, field, t, y, h, state, stages, tolerance):
        """``(norm (B,), extra evaluations (B,) or None)``."""

    @abstractmethod
    def _new_derivative(self, field, t, h, stages, accepted):
        """``f`` at the new point where accepted, and the evaluations it took (or None)."""

    @abstractmethod
    def _differentiable_step(self, field, t, y, h, stages) -> tuple:
        """The new state with the implicit-function-theorem derivative in ``y`` and ``θ``, and
        the attempt's dense data (as :meth:`_dense_data`) with that derivative too."""

    def _kept_from(self, stages) -> dict:
        """The method's state fields to keep where the attempt is accepted."""
        return {}

    def _dense_data(self, state, stages, f_new):
        """What :meth:`interpolant` needs of the attempt: by default the derivatives at both
        ends of the step."""
        return state.f0, f_new

    # The shared machinery ------------------------------------------------------------------

    @staticmethod
    def _roundoff(rtol, dtype) -> float:
        """The weighted size of an increment at round-off: it stops Newton whatever the
        contraction rate (an exact starting guess gives two round-off increments, rate ≈ 1)."""
        return 10 * torch.finfo(real_dtype(dtype)).eps / rtol

    def _newton_tol(self, rtol, dtype) -> float:
        return self.newton.tol or max(self._roundoff(rtol, dtype), min(0.03, rtol ** 0.5))

    def _refresh(self, field, t, y, h, state):
        """Recompute flagged Jacobians, and LU factors wherever J or h changed; returns the
        state and the per-sample Jacobian and LU counts (None when there were none)."""
        njev = nlu = None
        recompute = state.recompute
        J = state.J
        if bool(recompute.any()):
            rows = _Rows(recompute)
            J = rows.put(J, rows.take(field).jacobian(rows.take(t), rows.take(y)))
            njev = recompute.long()
        stale = recompute | (state.lu_h != h[:, 0])
        updates = {"J": J, "jac_current": state.jac_current | recompute}
        if bool(stale.any()):
            rows = _Rows(stale)
            h_s = rows.take(h)
            factors = self._factorise(rows.take(J), h_s, field.sparsity)
            for key, value in (*factors.items(), ("lu_h", h_s[:, 0])):
                updates[key] = rows.put(getattr(state, key), value)
            nlu = stale.long()
        return state.replace(**updates), njev, nlu

    def _step_factor(self, norm, accepted, stages, h, state):
        """The controller's factor, with a safety lowered after slow Newton convergence
        (RADAU5's ``safety·(2 k_max + 1)/(2 k_max + k)``); a kept step size has factor 1, and
        a Newton failure refreshes a stale Jacobian at the same step first, then halves it."""
        m = self.newton.max_iter
        safety = self.controller.safety * (2 * m + 1) / (
            2 * m + stages.iterations.to(norm.dtype))
        factor = self.controller.factor(norm, self.error_exponent, accepted=accepted, h=h,
                                        h_prev=state.h_prev, error_prev=state.error_prev,
                                        safety=safety)
        keep = self.controller.keep(factor, accepted)
        if keep is None:
            keep = torch.zeros_like(accepted)
        factor = torch.where(keep, torch.ones_like(factor), factor)
        fail = torch.where(state.jac_current, torch.full_like(factor, 0.5),
                           torch.ones_like(factor))
        return torch.where(stages.converged, factor, fail), keep

    def _next_state(self, state, stages, accepted, f_new, h, norm, keep):
        slow = (stages.iterations > 2) & (stages.rate > 1e-3)
        recompute = torch.where(accepted, slow, ~stages.converged & ~state.jac_current)
        updates = {
            "f0": f_new,
            "recompute": recompute,
            # After an accepted step J belongs to the old point.
            "jac_current": state.jac_current & ~accepted,
            "rejected": ~accepted,
        }
        for key, value in self._kept_from(stages).items():
            mask = accepted.reshape(-1, *(1,) * (value.ndim - 1))
            updates[key] = torch.where(mask, value, getattr(state, key))
        updates["h_prev"] = torch.where(accepted, h, state.h_prev)
        updates["error_prev"] = torch.where(accepted, norm, state.error_prev)
        # A kept step size with an unchanged Jacobian keeps valid LU factors.
        updates["lu_h"] = torch.where(accepted & ~keep | recompute,
                                      torch.full_like(h, math.nan), state.lu_h)
        return state.replace(**updates)


@dataclass(frozen=True, kw_only=True)
class RadauState(ImplicitState):
    """:class:`ImplicitState` plus the LU factors ``lu_e`` of the error estimate's ``γ/h − J``
    and the stage increments ``Z_prev (B, s, n)`` of the last accepted step (Newton's starting
    guess comes from their collocation polynomial)."""

    lu_e: DenseLU | SparseLU
    Z_prev: torch.Tensor


@dataclass(frozen=True, kw_only=True)
class RadauStages(Stages):
    """:class:`Stages` plus the stage increments ``Z (B, s, n)``."""

    Z: torch.Tensor


@dataclass(frozen=True, kw_only=True)
class RadauIIA(AdaptiveImplicit):
    """Base of the Radau IIA methods, of order ``2s − 1`` (``s`` stages, odd): adaptive,
    L-stable, stiffly accurate implicit Runge–Kutta for stiff problems, after Hairer & Wanner's
    RADAU5 and RADAU (*Solving ODEs II*, §IV.8).

    The ``s`` stages are solved together, per sample, through the eigenbasis of ``A⁻¹`` (one
    real and ``(s − 1)/2`` complex ``n × n`` LUs instead of one ``sn × sn``: see
    :func:`radau_eigensystem`; the gradient path still factors the full stage Jacobian with
    each stage's own ``J``); Newton starts from
    the previous step's collocation polynomial. The embedded error estimate is
    ``O(h^(s+1))`` (``error_order = s``), filtered through ``(γ/h − J)⁻¹``.
    """

    state_type = RadauState

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "tableau" in cls.__dict__:
            cls.error_order = cls.tableau.stages      # the estimate is O(h^(s+1))
            cls.dense_order = cls.tableau.stages      # the collocation polynomial

    def _dense_data(self, state, stages, f_new):
        return stages.Z

    def interpolant(self, y, h, attempt):
        """The collocation polynomial of the step, through ``(0, 0)`` and ``(c_j, Z_j)``:
        order ``s`` (Hairer & Wanner II, §IV.8), coefficients ``(B, s, n)``, differentiable
        when the step is."""
        return _collocation_coefficients(self.tableau, h.dtype, h.device).to(
            attempt.dense.dtype) @ attempt.dense

    @staticmethod
    @functools.lru_cache(maxsize=16)
    def _constants(tableau, dtype, device):
        """``γ``, the error weights and the extrapolation matrices (cached per method, dtype
        and device)."""
        gamma, E = radau_error_estimator(tableau)
        return (gamma, torch.tensor(E, dtype=dtype, device=device),
                torch.tensor(collocation_extrapolation(tableau.c), dtype=dtype, device=device))

    def _guess(self, state, h, P):
        """Newton's starting stages from the previous collocation polynomial (zero when none)."""
        h_prev = state.h_prev
        # h_prev == 0 (no previous step) gives r = ±inf or nan; those rows start at zero.
        r = (h / h_prev).nan_to_num(0.0, 0.0, 0.0)
        powers = torch.stack([r ** k for k in range(P.shape[0])], -1)       # (B, s+1)
        L = torch.tensordot(powers, P, dims=1)                              # (B, s, s)
        return L.to(state.Z_prev.dtype) @ state.Z_prev

    def _kept(self, y):
        return {"Z_prev": y.new_zeros(y.shape[0], self.tableau.stages, y.shape[1])}

    def _kept_from(self, stages):
        return {"Z_prev": stages.Z}

    @staticmethod
    @functools.lru_cache(maxsize=16)
    def _eigensystem(tableau, dtype, device):
        """:func:`radau_eigensystem` as complex tensors (cached per method, dtype, device)."""
        complex_dtype = torch.promote_types(dtype, torch.complex64)
        return tuple(torch.tensor(x, dtype=complex_dtype, device=device)
                     for x in radau_eigensystem(tableau))

    def _factorise(self, J, h, sparsity):
        """``γ/h − J`` (the real eigenvalue's system, which the error estimate shares) and
        ``λₖ/h − J`` for the complex eigenvalues of ``A⁻¹``: one of each conjugate pair for
        real states, every one for complex states. ``lu`` has batch ``(B, m)``, complex."""
        gamma = self._constants(self.tableau, real_dtype(J.dtype), J.device)[0]
        lu_e = shifted_lu(gamma / h.unsqueeze(-1), J, sparsity)
        lam = self._eigensystem(self.tableau, real_dtype(J.dtype), J.device)[0]
        lam = lam[1:1 + self._complex_blocks(J)]
        shifts = lam[:, None, None] / h.to(lam.dtype)[:, :, None, None]      # (B, m, 1, 1)
        return {"lu": shifted_lu(shifts, J.unsqueeze(1), sparsity), "lu_e": lu_e}

    def _complex_blocks(self, like) -> int:
        """The complex systems solved: one per conjugate pair of eigenvalues of ``A⁻¹`` for
        real states, one per complex eigenvalue for complex states."""
        return (self.tableau.stages - 1) // (1 if like.is_complex() else 2)

    def _solver(self, state, h):
        """``(I − h (A ⊗ J))⁻¹ G`` from the factors of :meth:`_factorise`: ``G`` is taken to
        the eigenbasis of ``A⁻¹``, each block solved with its ``n × n`` factors, and taken
        back (for real states the conjugate blocks are the conjugates of the ones solved)."""
        lam, V, V_inv = self._eigensystem(self.tableau, h.dtype, h.device)
        m = state.lu.shape[1]
        h = h.to(lam.dtype)

        def solve(G):
            W = torch.einsum("ij,bjn->bin", V_inv, G.to(lam.dtype))
            first = (lam[0] / h) * W[:, 0]
            first = first if G.is_complex() else first.real
            w0 = state.lu_e.solve(first)
            rest = (lam[1:1 + m] / h).unsqueeze(-1) * W[:, 1:1 + m]
            wk = state.lu.solve(rest)
            back = torch.einsum("ik,bkn->bin", V[:, 1:1 + m], wk)
            if G.is_complex():
                return V[:, 0, None] * w0.unsqueeze(1) + back
            return V[:, 0, None].real * w0.unsqueeze(1) + 2 * back.real
        return solve

    def _solve_stages(self, field, t, y, h, state, tolerance):
        A, _, c, _ = self.tableau.tensors(h.dtype, y.device)
        _, _, P = self._constants(self.tableau, h.dtype, y.device)
        rtol = tolerance.rtol
        Z, converged, iters, rate, _ = newton_solve(
            field, t, y, h, A, c, self._solver(state, h), tolerance.scale(y, y),
            self._newton_tol(rtol, y.dtype), self.newton.max_iter,
            Z0=self._guess(state, h[:, 0], P), floor=self._roundoff(rtol, y.dtype))
        return RadauStages(y_new=y + Z[:, -1], converged=converged, iterations=iters,
                           rate=rate, nfev=iters * self.tableau.stages, Z=Z)

    def _error(self, field, t, y, h, state, stages, tolerance):
        # Error estimate filtered through (γ/h − J)⁻¹ so stiff components are not
        # overestimated (Hairer & Wanner II, eq. IV.8.20); refined once after a rejection.
        _, E, _ = self._constants(self.tableau, h.dtype, y.device)
        ZE = (E.to(stages.Z.dtype) @ stages.Z) / h
        err = state.lu_e.solve(state.f0 + ZE)
        scale = tolerance.scale(y, stages.y_new)
        norm = rms(err / scale)
        refine = stages.converged & (norm > 1) & state.rejected
        if not bool(refine.any()):
            return norm, None
        idx = refine.nonzero().reshape(-1)
        f_err = field.take(idx)(t[idx], y[idx] + err[idx])
        err_i = state.lu_e.take(idx).solve(f_err + ZE[idx])
        return norm.index_put((idx,), rms(err_i / scale[idx])), refine.long()

    def _new_derivative(self, field, t, h, stages, accepted):
        # One batched evaluation beats gathering the accepted rows; rejected rows keep f0.
        return field(t + h[:, 0], stages.y_new), accepted

    def _differentiable_step(self, field, t, y, h, stages):
        A, _, c, _ = self.tableau.tensors(h.dtype, y.device)
        Z = implicit_function_correction(field, t, y, h, A, c, stages.Z)
        return y + Z[:, -1], Z


@functools.lru_cache(maxsize=16)
def _collocation_coefficients(tableau, dtype, device) -> torch.Tensor:
    """``V⁻¹ (s, s)`` with ``V_jk = c_j^k`` (``k = 1 … s``): the θ-coefficients of the
    polynomial through ``(0, 0)`` and ``(c_j, Z_j)`` are ``V⁻¹ Z``."""
    c = np.asarray(tableau.c, dtype=np.float64)
    V = c[:, None] ** np.arange(1, len(c) + 1)
    return torch.tensor(np.linalg.inv(V), dtype=dtype, device=device)


@dataclass(frozen=True, kw_only=True)
class RadauIIA5(RadauIIA):
    """Radau IIA of order 5 (3 stages): the workhorse for stiff problems at moderate
    tolerances, after Hairer & Wanner's RADAU5."""

    name = "radau5"
    tableau = RADAU_IIA5


@dataclass(frozen=True, kw_only=True)
class RadauIIA9(RadauIIA):
    """Radau IIA of order 9 (5 stages): fewer, larger steps than ``radau5``; its error estimate
    is of order 5 instead of 3, which pays off from moderate tolerances on."""

    name = "radau9"
    tableau = RADAU_IIA9


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


@dataclass(frozen=True, kw_only=True)
class KvaernoStages(Stages):
    """:class:`Stages` plus the embedded solution ``y_hat``, the last stage's derivative
    ``k_last`` (``f`` at the new point: the method is stiffly accurate) and each implicit
    stage's increment ``(B, 1, n)`` by stage index."""

    y_hat: torch.Tensor
    k_last: torch.Tensor
    increments: dict


@dataclass(frozen=True, kw_only=True)
class Kvaerno5(AdaptiveImplicit):
    """Kværnø's ESDIRK 5(4): adaptive, L-stable, stiffly accurate, 7 stages (the first explicit)
    solved one after another, each with the same ``n × n`` matrix ``I − hγJ`` (γ = 0.26).
    Order 5 with an embedded order-4 solution; the error estimate is their difference.

    Against ``radau5`` it trades more (cheaper) Newton solves for an LU ``s²`` times smaller:
    the better choice for large systems (neural-network fields with many state components).
    Stage ``i`` starts Newton from stage ``i − 1``; its derivative is taken as
    ``(z_i − base_i)/(hγ)``, not a new evaluation, which keeps Newton's error out of the stiff
    components (Hairer & Wanner II, §IV.8).

    Reference: A. Kværnø, "Singly diagonally implicit Runge–Kutta methods with an explicit
    first stage", *BIT Numerical Mathematics* 44(3) (2004) 489–502,
    doi:10.1023/B:BITN.0000046811.70614.38.
    """

    name = "kvaerno5"
    tableau = KVAERNO5
    error_order = KVAERNO5.error_order

    @property
    def gamma(self) -> float:
        return self.tableau.a[-1][-1]

    def _factorise(self, J, h, sparsity):
        # I − hγJ
        return {"lu": shifted_lu(1.0, J, sparsity, scale=(self.gamma * h).unsqueeze(-1))}

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

    def _solve_stages(self, field, t, y, h, state, tolerance):
        B = y.shape[0]
        _, _, c, _ = self.tableau.tensors(h.dtype, y.device)
        diagonal = self._diagonal(h)
        rtol = tolerance.rtol
        tol, scale = self._newton_tol(rtol, y.dtype), tolerance.scale(y, y)
        converged = torch.ones(B, dtype=torch.bool, device=y.device)
        iters = nfev = torch.zeros(B, dtype=torch.long, device=y.device)
        rate = h.new_zeros(B)
        increments = {}

        def solve(G):                       # one stage: G is (B, 1, n)
            return state.lu.solve(G[:, 0]).unsqueeze(1)

        def newton_stage(i, base, k_prev):
            nonlocal converged, iters, rate, nfev
            # Start from the previous stage's derivative: Z = hγ f(z_i) ≈ hγ k_{i−1}.
            Z, ok, k, r, _ = newton_solve(
                field, t, base, h, diagonal, c[i:i + 1], solve,
                scale, tol, self.newton.max_iter, Z0=(self.gamma * h * k_prev).unsqueeze(-2),
                floor=self._roundoff(rtol, y.dtype))
            converged, iters = converged & ok, torch.maximum(iters, k)
            rate = rate + r / (self.tableau.stages - 1)         # the mean over stages
            nfev = nfev + k
            increments[i] = Z
            return Z[:, 0]

        y_new, y_hat, k_last = self._stages(y, h, state.f0, newton_stage)
        return KvaernoStages(y_new=y_new, converged=converged, iterations=iters, rate=rate,
                             nfev=nfev, y_hat=y_hat, k_last=k_last, increments=increments)

    def _error(self, field, t, y, h, state, stages, tolerance):
        return rms((stages.y_new - stages.y_hat) / tolerance.scale(y, stages.y_new)), None

    def _new_derivative(self, field, t, h, stages, accepted):
        # Stiffly accurate: the last stage's derivative is f at the new point.
        return stages.k_last, None

    def _differentiable_step(self, field, t, y, h, stages):
        # Implicit-function-theorem derivative of every stage, through the stage bases.
        _, _, c, _ = self.tableau.tensors(h.dtype, y.device)
        diagonal = self._diagonal(h)

        def corrected_stage(i, base, _):
            return implicit_function_correction(field, t, base, h, diagonal, c[i:i + 1],
                                                stages.increments[i])[:, 0]

        f0 = field(t, y)
        y_new, _, k_last = self._stages(y, h, f0, corrected_stage)
        return y_new, (f0, k_last)
